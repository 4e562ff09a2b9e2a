//! Test only: the client's wire methods and the local gate's routes are the
//! same set, so no API method ships without the gate behind it and the gate
//! routes nothing that no client sends (docs/api-internals.md).

use std::collections::BTreeSet;

/// Quests the session layer sends or answers itself, outside the API specs:
/// `auth` and `bye` (src/client), and `ping`, which the gate also accepts
/// from a client.
const SESSION_METHODS: &[&str] = &["auth", "bye", "ping"];

#[test]
fn every_client_method_has_a_gate_route_and_every_route_a_client_method() {
    let client: BTreeSet<&str> = crate::api::all_specs()
        .map(|s| s.method)
        .chain(SESSION_METHODS.iter().copied())
        .collect();
    let gate: BTreeSet<&str> = crate::gate::state::route_names().into_iter().collect();
    let unrouted: Vec<_> = client.difference(&gate).collect();
    let unsent: Vec<_> = gate.difference(&client).collect();
    assert!(
        unrouted.is_empty() && unsent.is_empty(),
        "client methods without a gate route: {unrouted:?}; gate routes no client sends: {unsent:?}"
    );
}
