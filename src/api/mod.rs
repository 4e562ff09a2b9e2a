//! The RTM API methods, one module per area of the JavaScript docs. Each
//! method states its wire name, its request keys and how its answer maps to
//! its result; `RtmClient::call` does the rest (sending, timeout, delivery,
//! exactly-once completion).

mod answer;
mod groups_rooms;
mod messages;
