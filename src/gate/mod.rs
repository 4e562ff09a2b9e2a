//! The local in-memory RTM gate (GATE.md): an emulator that speaks the real wire protocol,
//! for the examples, the project's tests and the SDK's users.
//!
//! `state` holds the gate's semantics as a pure state machine (no sockets, threads or
//! clock); the network server around it feeds it quests and sends what it answers.

pub(crate) mod state;
