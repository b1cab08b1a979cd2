//! Routing: each parsed request is matched on its path and method,
//! checked (token, rate limit, body, query), and either answered at once
//! or turned into a command or a barrier on the ring, with its ticket
//! queued in `in_flight` to be answered in order (`answers.rs`).

use rand::Rng;

use crate::api::{self, ApiError, ClientOrderId, NO_ORDER};
use crate::engine::{Command, CommandKind, OrderId, Side};
use crate::matching::{Barrier, BarrierPurpose, Request};
use crate::net::api_docs;
use crate::net::http::{self, Method};
use crate::net::rate_limit::{RateLimit, Refusal};

use super::{answers, Answer, Awaiting, CommandName, Front, InFlight, ReadName};

/// The route a normalized path names: a trailing `/` is dropped (the
/// original's clients post to `/order/`).
pub(super) fn route_of(normal: &str) -> &str {
    match normal.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => normal,
    }
}

/// Whether `method` on route `path` is a listing, whose answer may run to
/// megabytes (`GET /orders` of a deep book, `GET /trades?limit=100000`):
/// a connection has one built at a time (`Connection::holds_a_listing`).
pub(super) fn is_listing(method: Method, path: &str) -> bool {
    matches!(
        (method, path),
        (
            Method::Get | Method::Head,
            "/orders" | "/trades" | "/book" | "/candles"
        )
    )
}

/// Whether `method` on route `path` enters, changes or cancels orders, which
/// under `--api-token` needs the token. Reads, the market data and the
/// routes' 404 and 405 answers do not.
fn needs_token(method: Method, path: &str) -> bool {
    match (path, method) {
        ("/order", Method::Post | Method::Put | Method::Delete)
        | ("/orders", Method::Delete)
        | (
            "/orders/batch" | "/orders/modify" | "/orders/cancel" | "/orders/cancel_all_after",
            Method::Post,
        ) => true,
        (_, Method::Put | Method::Delete) => path
            .strip_prefix("/order/")
            .is_some_and(|id| !id.contains('/')),
        _ => false,
    }
}

impl Front {
    /// Routes one request: answers it at once, or sends it to the engine.
    pub(super) fn dispatch(&mut self, slot: usize, request: &http::Request<'_>) {
        let keep_alive = request.keep_alive;
        let normal = http::normalized_path(request.path);
        let path = route_of(&normal);
        // HEAD is GET without the body (RFC 9110 requires both of every
        // server; uptime monitors probe with HEAD). Every answer to this
        // request, now or from the engine, is then written head only.
        self.head_only = request.method == Method::Head;
        let method = if self.head_only {
            Method::Get
        } else {
            request.method
        };
        let result = (self.authorize_route(method, path, request.authorization))
            .and_then(|()| params_known(path, method, request.query))
            .and_then(|()| match (path, method) {
                ("/order", Method::Post) => {
                    json_body(request).and_then(|body| self.place(slot, body, keep_alive))
                }
                ("/order", Method::Get | Method::Put | Method::Delete) => {
                    self.by_client_id(slot, method, request, keep_alive)
                }
                ("/order", _) => Err(method_not_allowed("GET, HEAD, POST, PUT, DELETE")),
                ("/orders/batch", Method::Post) => {
                    json_body(request).and_then(|body| self.place_batch(slot, body, keep_alive))
                }
                ("/orders/modify", Method::Post) => {
                    json_body(request).and_then(|body| self.modify_batch(slot, body, keep_alive))
                }
                ("/orders/cancel", Method::Post) => {
                    json_body(request).and_then(|body| self.cancel_batch(slot, body, keep_alive))
                }
                ("/orders/batch" | "/orders/modify" | "/orders/cancel", _) => {
                    Err(method_not_allowed("POST"))
                }
                ("/orders/cancel_all_after", Method::Post) => json_body(request)
                    .and_then(|body| self.set_cancel_after(slot, body, keep_alive)),
                ("/orders/cancel_all_after", Method::Get) => {
                    self.cancel_after_state(slot, request.query, keep_alive)
                }
                ("/orders/cancel_all_after", _) => Err(method_not_allowed("GET, HEAD, POST")),
                ("/orders", Method::Get) => {
                    let query = request.query;
                    api::limit_param(query, usize::MAX, None)
                        .and_then(|limit| Ok((limit, api::side_param(query)?)))
                        .and_then(|(limit, side)| {
                            let prefix = api::client_id_prefix_param(query)?;
                            let purpose = BarrierPurpose::Orders {
                                limit,
                                side,
                                prefix,
                            };
                            self.submit_barrier(slot, purpose, Awaiting::Replica, keep_alive)
                        })
                }
                ("/orders", Method::Delete) => api::side_param(request.query)
                    .and_then(|side| Ok((side, api::client_id_prefix_param(request.query)?)))
                    .and_then(|(side, prefix)| match prefix {
                        None => {
                            self.submit_command(slot, CommandKind::CancelAll { side }, keep_alive)
                        }
                        Some(prefix) => self.cancel_by_prefix(slot, side, prefix, keep_alive),
                    }),
                ("/trades", Method::Get) => {
                    let (default, max) = (
                        self.config.trades_default_limit,
                        self.config.trades_max_limit,
                    );
                    let query = request.query;
                    api::limit_param(query, default, Some(max))
                        .and_then(|limit| {
                            let order = self.order_param(query)?;
                            Ok((limit, order, api::trades_page(query)?))
                        })
                        .and_then(|(limit, order, page)| {
                            let (from, trade) = page.parts();
                            let purpose = BarrierPurpose::Trades {
                                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                                only_order: order.is_some(),
                                order: order.unwrap_or(NO_ORDER),
                                from,
                                trade,
                            };
                            self.submit_barrier(slot, purpose, Awaiting::Replica, keep_alive)
                        })
                }
                ("/candles", Method::Get) => {
                    let query = request.query;
                    api::interval_param(query)
                        .and_then(|interval| {
                            Ok((interval, api::limit_param(query, 100, Some(1000))?))
                        })
                        .and_then(|(interval, limit)| Ok((interval, limit, api::end_param(query)?)))
                        .and_then(|(interval, limit, end)| {
                            let purpose = BarrierPurpose::Candles {
                                interval,
                                limit,
                                end,
                            };
                            self.submit_barrier(slot, purpose, Awaiting::Replica, keep_alive)
                        })
                }
                ("/book", Method::Get) => {
                    api::depth_param(request.query, self.config.feed.default_depth)
                        .map_err(|detail| ApiError::new(422, detail))
                        .and_then(|depth| {
                            let purpose = BarrierPurpose::Book { depth };
                            self.submit_barrier(slot, purpose, Awaiting::Replica, keep_alive)
                        })
                }
                ("/ticker", Method::Get) => {
                    let purpose = BarrierPurpose::Ticker {
                        now: api::now_micros() * 1_000,
                    };
                    self.submit_barrier(slot, purpose, Awaiting::Replica, keep_alive)
                }
                ("/health", Method::Get) => {
                    let body = self.wire.health();
                    self.answer_now(slot, 200, body.as_bytes(), keep_alive);
                    Ok(())
                }
                // A HEAD is answered as the GET would be without the upgrade.
                ("/ws", Method::Get) => self.upgrade(slot, request),
                ("/metrics", Method::Get) => {
                    let text = self.metrics_text();
                    self.answer_now_typed(
                        slot,
                        200,
                        "text/plain; version=0.0.4",
                        text.as_bytes(),
                        keep_alive,
                        "",
                    );
                    Ok(())
                }
                ("/openapi.json", Method::Get) => {
                    let document = api_docs::OPENAPI_JSON.as_bytes();
                    self.answer_now(slot, 200, document, keep_alive);
                    Ok(())
                }
                ("/docs", Method::Get) => {
                    let page = api_docs::DOCS_HTML.as_bytes();
                    self.answer_now_typed(slot, 200, api_docs::HTML, page, keep_alive, "");
                    Ok(())
                }
                ("/orders", _) => Err(method_not_allowed("GET, HEAD, DELETE")),
                (
                    "/book" | "/trades" | "/candles" | "/ticker" | "/health" | "/metrics"
                    | "/openapi.json" | "/docs",
                    _,
                ) => Err(method_not_allowed("GET, HEAD")),
                ("/ws", _) => Err(method_not_allowed("GET, HEAD")),
                // One segment after `/order/`: `/order/{id}/more` is no route.
                _ => match path.strip_prefix("/order/").filter(|id| !id.contains('/')) {
                    Some(id) => self.by_id(slot, method, id, request, keep_alive),
                    None => Err(ApiError::new(404, "Not Found")),
                },
            });
        match result {
            Err(error) => self.answer_now_typed(
                slot,
                error.status,
                http::JSON,
                &error.body(),
                keep_alive,
                &error.header_line(),
            ),
            Ok(()) if is_listing(method, path) => {
                if let Some(conn) = self.connections[slot].as_mut() {
                    conn.listing = match conn.answers.back() {
                        Some(&Answer::Waiting(ticket)) => Some(ticket),
                        _ => None,
                    };
                }
            }
            Ok(()) => {}
        }
        self.head_only = false;
    }

    pub(super) fn place(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let order = self.wire.new_order(body)?;
        let id = api::uuid_v4(self.rng.random());
        if let Some(name) = order.client_id {
            self.client_ids.take_freed();
            if let Err(taken) = self.client_ids.claim(name, id) {
                return Err(name_taken("client_order_id", &name, taken));
            }
        }
        let submitted =
            self.submit_command_named(slot, order.place(id), order.client_id, keep_alive);
        if let (Err(_), Some(name)) = (&submitted, order.client_id) {
            self.client_ids.free(id, name);
        }
        submitted
    }

    /// `POST /orders/batch`: every order is checked first, and the batch
    /// is staged only if all of it fits on the command ring, so a batch is
    /// placed whole or refused whole (422, 503), never in part. Each order
    /// is then its own command, journaled as `POST /order/` journals it.
    pub(super) fn place_batch(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let orders = self.wire.new_orders(body)?;
        let places: Vec<CommandKind> = orders
            .iter()
            .map(|order| order.place(api::uuid_v4(self.rng.random())))
            .collect();
        let names: Vec<Option<ClientOrderId>> = orders.iter().map(|o| o.client_id).collect();
        let ids: Vec<OrderId> = places.iter().filter_map(CommandKind::id).collect();
        // Claimed in turn; a name taken, here by an earlier order of the
        // batch or before by another, gives back what was claimed.
        self.client_ids.take_freed();
        for (i, name) in names.iter().enumerate() {
            let Some(name) = *name else {
                continue;
            };
            if let Err(taken) = self.client_ids.claim(name, ids[i]) {
                self.free_names(&ids[..i], &names[..i]);
                let field = format!("orders[{i}].client_order_id");
                return Err(match ids.iter().position(|&id| id == taken) {
                    Some(earlier) => {
                        let why = format!("{name:?} is given to orders[{earlier}] too");
                        ApiError::new(422, format!("{field}: {why}"))
                    }
                    None => name_taken(&field, &name, taken),
                });
            }
        }
        let submitted = self.submit_batch(slot, &places, &names, "orders", keep_alive);
        if submitted.is_err() {
            self.free_names(&ids, &names);
        }
        submitted
    }

    /// Gives back the names claimed for places that were not staged.
    fn free_names(&mut self, ids: &[OrderId], names: &[Option<ClientOrderId>]) {
        for (&id, name) in ids.iter().zip(names) {
            if let Some(name) = *name {
                self.client_ids.free(id, name);
            }
        }
    }

    /// `POST /orders/modify`: modifies by id (or name), as `place_batch`
    /// places.
    pub(super) fn modify_batch(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let changes = self.wire.amendments(body)?;
        self.client_ids.take_freed();
        let modifies: Vec<CommandKind> = changes
            .into_iter()
            .map(|(order, change)| CommandKind::Modify {
                id: self.order_id(order),
                price: change.price,
                quantity: change.quantity,
            })
            .collect();
        self.submit_batch(slot, &modifies, &[], "orders", keep_alive)
    }

    /// `POST /orders/cancel`: cancels by id (or name), as `place_batch`
    /// places.
    pub(super) fn cancel_batch(
        &mut self,
        slot: usize,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let orders = api::order_refs(body)?;
        // The field the client sent, for an error about the batch.
        let field = match orders.first() {
            Some(api::OrderRef::Name(_)) => "client_order_ids",
            _ => "order_ids",
        };
        self.client_ids.take_freed();
        let cancels: Vec<CommandKind> = orders
            .into_iter()
            .map(|order| CommandKind::Cancel {
                id: self.order_id(order),
            })
            .collect();
        self.submit_batch(slot, &cancels, &[], field, keep_alive)
    }

    /// `DELETE /orders?client_order_id_prefix=P`: cancels the resting
    /// orders whose name starts with P. Only the replica knows names and
    /// the book together, so it lists them at a barrier, and the front then
    /// cancels them (`cancel_named`); the connection's later requests wait
    /// for that. `--rate-limit` counts it as one, as `DELETE /orders`: a
    /// client must be able to pull its quotes however many there are.
    fn cancel_by_prefix(
        &mut self,
        slot: usize,
        side: Option<Side>,
        prefix: ClientOrderId,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        self.admit(slot, 1, "order")?;
        let purpose = BarrierPurpose::Named { side, prefix };
        self.submit_barrier(slot, purpose, Awaiting::Named, keep_alive)?;
        if let Some(conn) = self.connections[slot].as_mut() {
            conn.held = true;
        }
        Ok(())
    }

    /// Cancels `orders`, the resting orders the replica found named with
    /// the prefix, as one batch (staged back to back, journaled as one),
    /// and answers with how many it cancelled: an order that finished in
    /// between is not counted. Room on the ring is checked as for any
    /// batch; a refusal cancels none.
    pub(super) fn cancel_named(&mut self, waiting: InFlight, orders: &[OrderId]) {
        let slot = waiting.slot;
        let cancels = cancels_of(orders);
        let room = self.ring_room(cancels.len(), "client_order_id_prefix");
        match room {
            Ok(()) if cancels.is_empty() => {
                self.complete(&waiting, 200, answers::cancelled_count(0).as_bytes());
            }
            Ok(()) => self.stage_batch(&waiting, &cancels, &[], |_, last, _| {
                Awaiting::NamedCancel { last }
            }),
            Err(error) => self.complete_error(&waiting, &error),
        }
        let Some(conn) = self.connections[slot].as_mut() else {
            return;
        };
        if conn.serial == waiting.serial {
            conn.held = false;
            self.pump(slot);
        }
    }

    /// The order `GET /trades` is asked about: `?order_id=`, or
    /// `?client_order_id=` (both is 422). A name no kept order has reads
    /// as an id no order has: no trades.
    fn order_param(&mut self, query: Option<&str>) -> Result<Option<OrderId>, ApiError> {
        match (api::order_id_param(query)?, api::client_id_param(query)?) {
            (Some(_), Some(_)) => Err(ApiError::new(
                422,
                "order_id: give order_id or client_order_id, not both",
            )),
            (Some(id), None) => Ok(Some(id)),
            (None, Some(name)) => Ok(Some(self.client_ids.taken_by(&name).unwrap_or(NO_ORDER))),
            (None, None) => Ok(None),
        }
    }

    /// The id of the order `order` names. A name no kept order has gives
    /// [`NO_ORDER`], which the engine answers as any unknown id: that
    /// change of the batch is 404, the others go ahead.
    fn order_id(&self, order: api::OrderRef) -> OrderId {
        match order {
            api::OrderRef::Id(id) => id,
            api::OrderRef::Name(name) => self.client_ids.named(&name).unwrap_or(NO_ORDER),
        }
    }

    /// Stages `commands` (the body's `field`) as one batch with one
    /// answer, or none of them; `names` are the places' `client_order_id`s
    /// (claimed), by position.
    pub(super) fn submit_batch(
        &mut self,
        slot: usize,
        commands: &[CommandKind],
        names: &[Option<ClientOrderId>],
        field: &str,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        self.ring_room(commands.len(), field)?;
        self.admit(slot, commands.len(), field)?;
        let Some(conn) = self.connections[slot].as_mut() else {
            return Ok(());
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        conn.answers.push_back(Answer::Waiting(ticket));
        // What the batch's commands share; `stage_batch` fills in the rest.
        let waiting = InFlight {
            ticket,
            slot,
            serial: conn.serial,
            keep_alive,
            head_only: false,
            kind: Awaiting::Replica,
            ts: 0,
            seq: 0,
            read: None,
            name: None,
        };
        self.stage_batch(&waiting, commands, names, |first, last, of| {
            Awaiting::BatchItem { first, last, of }
        });
        Ok(())
    }

    /// Refuses a batch of `len` commands (from the request's `field`) that
    /// could never fit the command ring (422) or does not fit it now (503).
    fn ring_room(&mut self, len: usize, field: &str) -> Result<(), ApiError> {
        let capacity = self.requests.capacity();
        if len > capacity {
            // A 503 would ask for a retry that can never succeed.
            let why = format!("at most {capacity} fit the command ring (--command-ring)");
            return Err(ApiError::new(422, format!("{field}: {why}")));
        }
        if self.requests.free_len() < len {
            self.stats.overloaded += 1;
            return Err(ApiError::unavailable("Engine overloaded; retry shortly"));
        }
        Ok(())
    }

    /// Stages `commands`, which [`ring_room`](Self::ring_room) found room
    /// for, back to back for the request `waiting` stands for, each
    /// awaited as `awaiting(first, last, command)` says; `names` are the
    /// places' `client_order_id`s (claimed), by position. Journaled as one
    /// batch: a crash keeps all of them or none.
    pub(super) fn stage_batch(
        &mut self,
        waiting: &InFlight,
        commands: &[CommandKind],
        names: &[Option<ClientOrderId>],
        awaiting: impl Fn(bool, bool, CommandName) -> Awaiting,
    ) {
        let ts = self.stamps.stamp();
        for (i, &kind) in commands.iter().enumerate() {
            let command = Command { ts, kind };
            if self.requests.stage(Request::Apply(command)).is_err() {
                // free_len counted every staged item, and only this thread
                // stages: the room checked before is still there.
                unreachable!("the command ring lost room it was seen to have");
            }
            let name = names.get(i).copied().flatten();
            let last = i + 1 == commands.len();
            self.journal.append(command, name, !last);
            if let (Some(name), CommandKind::Place { id, .. }) = (name, kind) {
                self.client_ids.staged(id, name);
            }
            self.in_flight.push_back(InFlight {
                kind: awaiting(i == 0, last, CommandName::of(&kind)),
                ts,
                seq: self.journal.last_seq(),
                name,
                ..*waiting
            });
        }
        self.staged = true;
    }

    pub(super) fn by_id(
        &mut self,
        slot: usize,
        method: Method,
        id: &str,
        request: &http::Request<'_>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        if !matches!(method, Method::Get | Method::Put | Method::Delete) {
            return Err(method_not_allowed("GET, HEAD, PUT, DELETE"));
        }
        let id =
            api::parse_uuid(id).ok_or_else(|| ApiError::new(422, "order_id: must be a UUID"))?;
        self.on_order(slot, method, id, request, keep_alive)
    }

    /// `GET`, `PUT` and `DELETE /order?client_order_id=`: as by id, for the
    /// order the name names now. A name no kept order has is 404, as an
    /// unknown id is.
    pub(super) fn by_client_id(
        &mut self,
        slot: usize,
        method: Method,
        request: &http::Request<'_>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let Some(name) = api::client_id_param(request.query)? else {
            return Err(ApiError::new(422, "client_order_id: field required"));
        };
        let Some(id) = self.client_ids.taken_by(&name) else {
            let not_found = match method {
                Method::Put => "Order not found or unable to modify",
                _ => "Order not found",
            };
            return Err(ApiError::new(404, not_found));
        };
        self.on_order(slot, method, id, request, keep_alive)
    }

    /// Fetches, modifies or cancels order `id`.
    fn on_order(
        &mut self,
        slot: usize,
        method: Method,
        id: OrderId,
        request: &http::Request<'_>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        match method {
            Method::Get => self.submit_barrier(
                slot,
                BarrierPurpose::Order(id),
                Awaiting::Replica,
                keep_alive,
            ),
            Method::Put => {
                let change = self.wire.amendment(json_body(request)?)?;
                let kind = CommandKind::Modify {
                    id,
                    price: change.price,
                    quantity: change.quantity,
                };
                self.submit_command(slot, kind, keep_alive)
            }
            _ => self.submit_command(slot, CommandKind::Cancel { id }, keep_alive),
        }
    }

    /// Under `--rate-limit`, takes `orders` (the body's `field`) from the
    /// client's bucket, or refuses them all: 429 with `Retry-After` (whole
    /// seconds, at least one), or 422 for more at once than the burst ever
    /// allows.
    pub(super) fn admit(
        &mut self,
        slot: usize,
        orders: usize,
        field: &str,
    ) -> Result<(), ApiError> {
        let (Some(limiter), Some(conn)) = (&mut self.limiter, &self.connections[slot]) else {
            return Ok(());
        };
        let RateLimit { per_second, burst } = limiter.limit();
        match limiter.admit(conn.peer, orders, self.now) {
            Ok(()) => Ok(()),
            Err(Refusal::OverBurst) => Err(ApiError::new(
                422,
                format!("{field}: at most {burst} at once from one address (--rate-limit-burst)"),
            )),
            Err(Refusal::Wait(wait)) => {
                self.stats.rate_limited += orders as u64;
                let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
                Err(ApiError {
                    headers: vec![("Retry-After", seconds.to_string().into())],
                    ..ApiError::new(
                        429,
                        format!(
                            "Too many orders: at most {per_second} a second ({burst} at once) from one address; retry in {seconds} s"
                        ),
                    )
                })
            }
        }
    }

    /// Under `--api-token`, `method` on route `path` (a [`route_of`])
    /// needs the token if it enters, changes or cancels orders
    /// ([`needs_token`], `net::auth`): both `dispatch` and the refusal of a
    /// body before it is sent ask here.
    pub(super) fn authorize_route(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&[u8]>,
    ) -> Result<(), ApiError> {
        match &self.config.api_token {
            Some(token) if needs_token(method, path) => token.check(authorization),
            _ => Ok(()),
        }
    }

    pub(super) fn submit_command(
        &mut self,
        slot: usize,
        kind: CommandKind,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        self.submit_command_named(slot, kind, None, keep_alive)
    }

    /// [`submit_command`](Self::submit_command) of a place the client
    /// named (`name`, claimed).
    pub(super) fn submit_command_named(
        &mut self,
        slot: usize,
        kind: CommandKind,
        name: Option<ClientOrderId>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        self.admit(slot, 1, "order")?;
        // Whole microseconds: the wire and the state file show microseconds,
        // so a restart restores exactly the timestamps that were stamped.
        let ts = self.stamps.stamp();
        let awaiting = Awaiting::Command(CommandName::of(&kind));
        self.submit(
            slot,
            Request::Apply(Command { ts, kind }),
            awaiting,
            name,
            keep_alive,
        )
    }

    pub(super) fn submit_barrier(
        &mut self,
        slot: usize,
        purpose: BarrierPurpose,
        awaiting: Awaiting,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        let barrier = Barrier {
            ticket: self.next_ticket,
            purpose,
        };
        self.submit(slot, Request::Barrier(barrier), awaiting, None, keep_alive)
    }

    /// Stages `request` on the command ring (a place with its client's
    /// `name` for it); a full ring is answered 503.
    pub(super) fn submit(
        &mut self,
        slot: usize,
        request: Request,
        kind: Awaiting,
        name: Option<ClientOrderId>,
        keep_alive: bool,
    ) -> Result<(), ApiError> {
        if self.requests.stage(request).is_err() {
            self.stats.overloaded += 1;
            return Err(ApiError::unavailable("Engine overloaded; retry shortly"));
        }
        let seq = match request {
            Request::Apply(command) => {
                self.journal.append(command, name, false);
                if let (Some(name), CommandKind::Place { id, .. }) = (name, command.kind) {
                    self.client_ids.staged(id, name);
                }
                self.journal.last_seq()
            }
            Request::Barrier(_) => 0,
        };
        self.staged = true;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let Some(conn) = self.connections[slot].as_mut() else {
            return Ok(());
        };
        conn.answers.push_back(Answer::Waiting(ticket));
        if matches!(kind, Awaiting::Replica) {
            conn.replica_reads += 1;
        }
        let (ts, read) = match request {
            Request::Apply(command) => (command.ts, None),
            Request::Barrier(barrier) => {
                let read = ReadName::of(&barrier.purpose);
                (0, read.map(|name| (name, api::now_micros())))
            }
        };
        self.in_flight.push_back(InFlight {
            ticket,
            slot,
            serial: conn.serial,
            keep_alive,
            head_only: self.head_only,
            kind,
            ts,
            seq,
            read,
            name,
        });
        Ok(())
    }
}

/// A cancel of each of `orders`, in their order.
pub(super) fn cancels_of(orders: &[OrderId]) -> Vec<CommandKind> {
    orders
        .iter()
        .map(|&id| CommandKind::Cancel { id })
        .collect()
}

/// The body of a request that must be JSON. A body sent as another media
/// type is refused before it is read: a web page can make a browser send
/// `text/plain`, form or multipart bodies to any address without asking
/// (CORS lets such "simple" requests through), so taking those as JSON
/// would let any page the user opens place orders on a service on their
/// machine or network. FastAPI, the original's framework, refuses them
/// too since CVE-2021-32677. No `Content-Type` at all is taken as JSON
/// (wrk, netcat and the original's clients), as FastAPI does, but from a
/// web page (`http::body_is_json`). JSON is UTF-8 (RFC 8259 §8.1): the
/// parser checks the strings it reads, not those of fields it skips, so
/// the whole body is checked here.
fn json_body<'r>(request: &'r http::Request<'_>) -> Result<&'r [u8], ApiError> {
    json_type(request.content_type, request.from_a_web_page)?;
    std::str::from_utf8(&request.body)
        .map(|_| &*request.body)
        .map_err(|error| {
            let at = error.valid_up_to();
            ApiError::new(400, format!("Malformed JSON body: not UTF-8 at byte {at}"))
        })
}

/// 415 for a body [`json_body`] would not read as JSON; also asked of a
/// head whose client waits for `100 Continue`, so that its body is
/// refused before it is sent.
pub(super) fn json_type(
    content_type: Option<&[u8]>,
    from_a_web_page: bool,
) -> Result<(), ApiError> {
    if http::body_is_json(content_type, from_a_web_page) {
        return Ok(());
    }
    let detail = match content_type {
        Some(value) => {
            let sent: String = String::from_utf8_lossy(value).chars().take(64).collect();
            format!("Content-Type: must be application/json, not {}", api::Quoted(&sent))
        }
        None => "Content-Type: must be application/json: a web page's body without one is not taken as JSON".into(),
    };
    Err(ApiError::new(415, detail))
}

/// Refuses a query parameter a route that takes some does not know
/// (422; 400 for `/ws`, refused before the upgrade): ignored, a misspelt
/// filter (`?clientOrderIdPrefix=`, `?orderId=`) would answer with every
/// order or trade, or `DELETE /orders` cancel every order instead of the
/// few meant. Writes that take none refuse any; reads that take none
/// ignore a query (a cache-buster).
fn params_known(path: &str, method: Method, query: Option<&str>) -> Result<(), ApiError> {
    let takes: &[&str] = match (path, method) {
        ("/orders", Method::Get) => &["limit", "side", "client_order_id_prefix"],
        ("/orders", Method::Delete) => &["side", "client_order_id_prefix"],
        ("/trades", Method::Get) => &["limit", "order_id", "client_order_id", "after", "before"],
        ("/candles", Method::Get) => &["interval", "limit", "end"],
        ("/book", Method::Get) => &["depth"],
        ("/orders/cancel_all_after", Method::Get) => &["client_order_id_prefix"],
        ("/order", Method::Get | Method::Put | Method::Delete) => &["client_order_id"],
        ("/ws", Method::Get) => &["depth", "channels"],
        // The other writes take none: `POST /orders/cancel_all_after
        // ?client_order_id_prefix=P` ignored would arm the switch of every
        // order, `POST /order?client_order_id=` place an unnamed order.
        _ if needs_token(method, path) => &[],
        _ => return Ok(()),
    };
    let shown = if path.starts_with("/order/") {
        "/order/{id}"
    } else {
        path
    };
    let route = || format!("{} {shown}", method_name(method));
    api::only_params(query, route, takes).map_err(|refused| match path {
        "/ws" => ApiError::new(400, refused.detail),
        _ => refused,
    })
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get | Method::Head => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Other => "this method on",
    }
}

/// 409: `name` (the body's `field`) already names an order the service
/// keeps, `taken`; the client finds it with `GET /order?client_order_id=`.
fn name_taken(field: &str, name: &ClientOrderId, taken: OrderId) -> ApiError {
    let mut order = String::with_capacity(36);
    api::write_uuid(&mut order, taken);
    ApiError::new(
        409,
        format!("{field}: {name:?} already names order {order}, which the service still keeps"),
    )
}

/// 405, with the methods `path` takes for the `Allow` header (RFC 9110
/// §15.5.6 requires it; clients and proxies read it to correct the call).
fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError {
        headers: vec![("Allow", allow.into())],
        ..ApiError::new(405, "Method Not Allowed")
    }
}
