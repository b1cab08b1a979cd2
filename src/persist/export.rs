//! `orderbook --print-journal`: the journal as JSON lines, one command a
//! line, oldest first, for audits and for finding what became of an order
//! after it left the fetchable history (`jq 'select(.order_id == "…")'`).
//! It reads the files only, so it runs beside a live service.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use crate::api::{write_timestamp, write_uuid, Wire, NO_ORDER};
use crate::engine::{CommandKind, TimeInForce, MARKET};

use super::journal::Record;
use super::segments;

/// Writes `record` as one JSON object and a newline:
/// `{"seq","timestamp","command":"place"|"modify"|"cancel","order_id",...}`
/// (`"cancel_all"` has no `order_id`, and `side` when it emptied one side)
/// with, for a place, `side`, `price` (or `"type":"market"`), `quantity`,
/// `time_in_force`, `post_only` and any `client_order_id` as a client
/// sends them, and for a modify
/// the fields it changes.
pub fn write_line(out: &mut String, wire: &Wire, record: &Record) {
    let command = &record.command;
    let _ = write!(out, "{{\"seq\":{},\"timestamp\":\"", record.seq);
    write_timestamp(out, command.ts);
    let name = match command.kind {
        CommandKind::Place { .. } => "place",
        CommandKind::Modify { .. } => "modify",
        CommandKind::Cancel { .. } => "cancel",
        CommandKind::CancelAll { .. } => "cancel_all",
    };
    let _ = write!(out, "\",\"command\":\"{name}\"");
    match command.kind.id() {
        // A batch's change by a name no kept order had: it named no order.
        Some(NO_ORDER) => out.push_str(",\"order_id\":null"),
        Some(id) => {
            out.push_str(",\"order_id\":\"");
            write_uuid(out, id);
            out.push('"');
        }
        None => {}
    }
    match command.kind {
        CommandKind::Place {
            side,
            price,
            quantity,
            tif,
            ..
        } => {
            let _ = write!(out, ",\"side\":{}", side as i8);
            if price == MARKET {
                out.push_str(",\"type\":\"market\"");
            } else {
                out.push_str(",\"price\":");
                wire.tick.write_price(out, price);
            }
            let (time_in_force, post_only) = match tif {
                TimeInForce::GoodTillCancel => ("GTC", false),
                TimeInForce::ImmediateOrCancel => ("IOC", false),
                TimeInForce::FillOrKill => ("FOK", false),
                TimeInForce::PostOnly => ("GTC", true),
            };
            let _ = write!(
                out,
                ",\"quantity\":{quantity},\"time_in_force\":\"{time_in_force}\",\"post_only\":{post_only}"
            );
            if let Some(name) = record.client_id {
                let _ = write!(out, ",\"client_order_id\":\"{name}\"");
            }
        }
        CommandKind::Modify {
            price, quantity, ..
        } => {
            if let Some(price) = price {
                out.push_str(",\"price\":");
                wire.tick.write_price(out, price);
            }
            if let Some(quantity) = quantity {
                let _ = write!(out, ",\"quantity\":{quantity}");
            }
        }
        CommandKind::Cancel { .. } | CommandKind::CancelAll { side: None } => {}
        CommandKind::CancelAll { side: Some(side) } => {
            let _ = write!(out, ",\"side\":{}", side as i8);
        }
    }
    out.push_str("}\n");
}

/// Writes every record of the journal in `dir` from record `from` on to
/// `out` as JSON lines and returns the reader's warnings. A reader that
/// goes away (a closed pipe, as under `| head`) ends the listing quietly.
pub fn print_journal(
    dir: &Path,
    from: u64,
    wire: &Wire,
    out: &mut impl Write,
) -> Result<Vec<String>, String> {
    let mut line = String::with_capacity(256);
    let mut failed: Option<io::Error> = None;
    let warnings = segments::read_all(dir, from, |record| {
        line.clear();
        write_line(&mut line, wire, &record);
        if let Err(error) = out.write_all(line.as_bytes()) {
            failed = Some(error);
        }
        failed.is_none()
    })?;
    match failed.map_or_else(|| out.flush(), Err) {
        Ok(()) => Ok(warnings),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(warnings),
        Err(error) => Err(format!("cannot write the journal out: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ClientOrderId, Symbol, TickSize};
    use crate::engine::{Command, Side};

    fn wire() -> Wire {
        Wire {
            symbol: Symbol::parse("X").unwrap(),
            tick: TickSize::parse("0.05").unwrap(),
            max_quantity: 1_000,
        }
    }

    fn line(seq: u64, kind: CommandKind) -> String {
        let wire = wire();
        let mut out = String::new();
        // 2026-11-30T15:00:00.000123Z in nanoseconds.
        let ts = 1_796_050_800_000_123_000;
        write_line(&mut out, &wire, &Record::new(seq, Command { ts, kind }));
        out
    }

    #[test]
    fn each_command_prints_as_a_client_would_send_it() {
        let id = 0x0b9f_6a9e_4a3c_4c1e_9c1d_2b7d_1f0e_6a11;
        let head = |seq: u64, name: &str| {
            format!("{{\"seq\":{seq},\"timestamp\":\"2026-11-30T15:00:00.000123Z\",\"command\":\"{name}\",\"order_id\":\"0b9f6a9e-4a3c-4c1e-9c1d-2b7d1f0e6a11\"")
        };
        let place = |tif| CommandKind::Place {
            id,
            side: Side::Sell,
            price: 2_001,
            quantity: 7,
            tif,
        };
        assert_eq!(
            line(1, place(TimeInForce::PostOnly)),
            head(1, "place")
                + ",\"side\":-1,\"price\":100.05,\"quantity\":7,\"time_in_force\":\"GTC\",\"post_only\":true}\n"
        );
        assert_eq!(
            line(2, place(TimeInForce::FillOrKill)),
            head(2, "place")
                + ",\"side\":-1,\"price\":100.05,\"quantity\":7,\"time_in_force\":\"FOK\",\"post_only\":false}\n"
        );
        let named = Record {
            client_id: ClientOrderId::parse("grid-7/leg-2"),
            ..Record::new(
                6,
                Command {
                    ts: 1_796_050_800_000_123_000,
                    kind: place(TimeInForce::GoodTillCancel),
                },
            )
        };
        let mut out = String::new();
        write_line(&mut out, &wire(), &named);
        assert_eq!(
            out,
            head(6, "place")
                + ",\"side\":-1,\"price\":100.05,\"quantity\":7,\"time_in_force\":\"GTC\",\"post_only\":false,\"client_order_id\":\"grid-7/leg-2\"}\n"
        );
        let market = CommandKind::Place {
            id,
            side: Side::Buy,
            price: MARKET,
            quantity: 7,
            tif: TimeInForce::ImmediateOrCancel,
        };
        assert_eq!(
            line(2, market),
            head(2, "place")
                + ",\"side\":1,\"type\":\"market\",\"quantity\":7,\"time_in_force\":\"IOC\",\"post_only\":false}\n"
        );
        let modify = |price, quantity| CommandKind::Modify {
            id,
            price,
            quantity,
        };
        assert_eq!(
            line(3, modify(Some(20), Some(9))),
            head(3, "modify") + ",\"price\":1.0,\"quantity\":9}\n"
        );
        assert_eq!(
            line(4, modify(None, Some(9))),
            head(4, "modify") + ",\"quantity\":9}\n"
        );
        assert_eq!(
            line(5, CommandKind::Cancel { id }),
            head(5, "cancel") + "}\n"
        );
    }
}
