//! The history area: `getp2pmsg`, `getgroupmsg`, `getroommsg` and `getbroadcastmsg`, one
//! page at a time over the messages stored by `messages.rs`. It keeps no state of its own.

use rmpv::Value;

use super::messages::{Kind, Msg};
use super::{int, mtypes, obj, Args, Ctx, GateError, Project, Route};

pub(super) const ROUTES: &[Route] = &[
    Route::user("getp2pmsg", |p, ctx, a| history(Kind::P2p, p, ctx, a)),
    Route::user("getgroupmsg", |p, ctx, a| history(Kind::Group, p, ctx, a)),
    Route::user("getroommsg", |p, ctx, a| history(Kind::Room, p, ctx, a)),
    Route::user("getbroadcastmsg", |p, ctx, a| {
        history(Kind::Broadcast, p, ctx, a)
    }),
];

/// At most 20 history items per answer (docs/gate.md, "History").
const MAX_PAGE: u64 = 20;

/// One page of a history: `{ouid | gid | rid}` (none for broadcasts) and `desc, num,
/// begin?, end?, lastid?, mtypes?`.
fn history(kind: Kind, p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let uid = ctx.uid;
    let target = kind
        .history_key()
        .map(|k| a.id(k))
        .transpose()?
        .unwrap_or(0);
    let desc = a.req("desc", Value::as_bool)?;
    // Any integer width; a huge num is just "as many as allowed".
    let num = a
        .req("num", |v| v.as_u64().filter(|&n| n >= 1))?
        .min(MAX_PAGE) as usize;
    let [begin, end, lastid] = ["begin", "end", "lastid"].map(|k| a.opt(k, int));
    let (begin, end, lastid) = (begin?.unwrap_or(0), end?.unwrap_or(0), lastid?.unwrap_or(0));
    let mtypes = a.opt("mtypes", mtypes)?.filter(|t| !t.is_empty());
    p.check_access(kind, uid, target)?;
    let keep = |x: &&Msg| {
        (begin <= 0 || x.mtime >= begin)
            && (end <= 0 || x.mtime <= end)
            && (lastid <= 0 || if desc { x.id < lastid } else { x.id > lastid })
            && mtypes.map_or(true, |t| t.contains(x.mtype))
    };
    let all = p.messages.conv(&kind.conv(uid, target));
    let page: Vec<&Msg> = if desc {
        all.iter().rev().filter(keep).take(num).collect()
    } else {
        all.iter().filter(keep).take(num).collect()
    };
    let (mut lastid, mut begin, mut end) = (lastid, begin, end);
    if let Some(last) = page.last() {
        lastid = last.id;
        *(if desc { &mut end } else { &mut begin }) = last.mtime;
    }
    let msgs = page.iter().map(|x| row(kind, uid, x)).collect();
    Ok(obj([
        ("num", page.len().into()),
        ("lastid", lastid.into()),
        ("begin", begin.into()),
        ("end", end.into()),
        ("msgs", Value::Array(msgs)),
    ]))
}

/// A message as a history row `[id, from, mtype, mid, deleted, msg, attrs, mtime]`, seen
/// by `uid`: in p2p rows the second element is the direction (1 sent by `uid`, 2
/// received). The conversation lists (`conversations.rs`) use the same rows.
pub(super) fn row(kind: Kind, uid: i64, x: &Msg) -> Value {
    let second = match kind {
        Kind::P2p if x.from == uid => 1,
        Kind::P2p => 2,
        _ => x.from,
    };
    let fields = [
        x.id.into(),
        second.into(),
        x.mtype.into(),
        x.mid.into(),
        x.deleted.into(),
    ];
    Value::Array(
        fields
            .into_iter()
            .chain([x.content.body(), x.content.attrs(), x.mtime.into()])
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    /// Pages through a whole history by passing the cursor back; checks every answer's shape.
    fn page_all(g: &mut Gate, conn: ConnId, method: &str, target: i64, desc: bool) -> Vec<i64> {
        let (mut begin, mut end, mut lastid, mut seen) = (0, 0, 0, Vec::new());
        for _ in 0..10 {
            let p = vec![
                ("target", target.into()),
                ("desc", desc.into()),
                ("num", 20.into()),
                ("begin", begin.into()),
                ("end", end.into()),
                ("lastid", lastid.into()),
            ];
            let p = if method == "getbroadcastmsg" {
                p[1..].to_vec()
            } else {
                p
            };
            let h = g.history(conn, method, p);
            let page = items(&h);
            assert_eq!(num(&h, "num") as usize, page.len());
            assert!(page.len() <= 20);
            let Some(last) = page.last() else {
                assert_eq!(
                    [num(&h, "lastid"), num(&h, "begin"), num(&h, "end")],
                    [lastid, begin, end]
                );
                return seen;
            };
            assert_eq!(num(&h, "lastid"), last[0].as_i64().unwrap());
            let (moved, kept) = if desc {
                ("end", ("begin", begin))
            } else {
                ("begin", ("end", end))
            };
            assert_eq!(num(&h, moved), last[7].as_i64().unwrap());
            assert_eq!(num(&h, kept.0), kept.1);
            seen.extend(page.iter().map(|x| x[0].as_i64().unwrap()));
            (lastid, begin, end) = (num(&h, "lastid"), num(&h, "begin"), num(&h, "end"));
        }
        panic!("paging did not end");
    }

    #[test]
    fn paging_45_messages_each_way_has_no_gap_or_repeat() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 2});
        g.ok(b, "enterroom", map! {"rid": 2});
        for i in 0..45 {
            // Three messages share each millisecond, so the cursor has to rely on lastid.
            g.now = 10_000 + i / 3;
            let from = if i % 2 == 0 { a } else { b };
            g.sendp(from, if from == a { B } else { A }, 0, 30);
            let who = if i % 2 == 0 { A } else { B };
            g.post(from, "sendgroupmsg", 1, 0);
            g.post(from, "sendroommsg", 2, 0);
            g.s.broadcast(PID, who, 30, "b".into(), "", g.now);
        }
        for (method, target) in [
            ("getp2pmsg", B),
            ("getgroupmsg", 1),
            ("getroommsg", 2),
            ("getbroadcastmsg", 0),
        ] {
            let asc = page_all(&mut g, a, method, target, false);
            assert_eq!(asc.len(), 45, "{method}");
            assert!(asc.windows(2).all(|w| w[0] < w[1]), "{method}: {asc:?}");
            let mut desc = page_all(&mut g, a, method, target, true);
            desc.reverse();
            assert_eq!(desc, asc, "{method}");
        }
    }

    /// A long `mtypes` list (repeats, mtypes no message has, all 256) filters the four
    /// histories as its distinct mtypes do.
    #[test]
    fn a_long_mtypes_list_filters_history_as_its_distinct_mtypes() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        g.group(a, 1, &[B]);
        g.ok(a, "enterroom", map! {"rid": 2});
        g.ok(b, "enterroom", map! {"rid": 2});
        for mid in 1..=30 {
            let mtype = [30, 40, 51][mid as usize % 3];
            g.send(b, "sendmsg", A, mid, mtype, "x".into())
                .answer
                .unwrap();
            g.send(b, "sendgroupmsg", 1, mid, mtype, "x".into())
                .answer
                .unwrap();
            g.send(b, "sendroommsg", 2, mid, mtype, "x".into())
                .answer
                .unwrap();
            g.s.broadcast(PID, B, mtype, "b".into(), "", g.now);
        }
        let types = |ts: Vec<i64>| Value::Array(ts.into_iter().map(Value::from).collect());
        let mut long = vec![0; 5_000];
        long.extend([51, 40, 51, 7, 40].repeat(60));
        long.extend(vec![255; 5_000]);
        let every: Vec<i64> = (0..=255).chain(0..=255).collect();
        for method in ["getp2pmsg", "getgroupmsg", "getroommsg", "getbroadcastmsg"] {
            let target = match method {
                "getp2pmsg" => vec![("target", B.into())],
                "getgroupmsg" => vec![("target", 1.into())],
                "getroommsg" => vec![("target", 2.into())],
                _ => vec![],
            };
            let mut h = |ts: Option<Vec<i64>>, desc: bool| {
                let mut extra = target.clone();
                extra.extend([("desc", desc.into()), ("num", 20.into())]);
                extra.extend(ts.map(|ts| ("mtypes", types(ts))));
                g.history(a, method, extra)
            };
            for desc in [false, true] {
                let short = h(Some(vec![40, 51]), desc);
                assert_eq!(num(&short, "num"), 20, "{method}");
                assert_eq!(h(Some(long.clone()), desc), short, "{method} {desc}");
                assert_eq!(
                    h(Some(every.clone()), desc),
                    h(None, desc),
                    "{method} {desc}"
                );
            }
        }
    }

    #[test]
    fn history_filters_and_bounds() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        let mut sent = Vec::new();
        for i in 0..30 {
            g.now = 1_000 + i * 10;
            sent.push(g.sendp(a, B, i + 1, if i % 3 == 0 { 40 } else { 30 }));
        }
        let h = |g: &mut Gate, extra: Vec<(&str, Value)>| {
            let mut p = vec![("target", B.into())];
            p.extend(extra);
            g.history(a, "getp2pmsg", p)
        };
        let all = ids_of(&h(&mut g, vec![("num", 100.into())]));
        assert_eq!(all.len(), 20);
        assert_eq!(
            ids_of(&h(&mut g, vec![("num", Value::from(u64::MAX))])),
            all
        );
        for bad in [
            Value::from(0),
            Value::from(-1),
            Value::from("5"),
            Value::from(i64::MIN),
        ] {
            assert_eq!(
                g.err(a, "getp2pmsg", map! {"ouid": B, "desc": false, "num": bad}),
                EMPTY_PARAMETER
            );
        }
        // num, desc and the target are required.
        assert_eq!(
            g.err(a, "getp2pmsg", map! {"ouid": B, "num": 5}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "getp2pmsg", map! {"desc": true, "num": 5}),
            EMPTY_PARAMETER
        );
        assert_eq!(
            g.err(a, "getbroadcastmsg", map! {"desc": true}),
            EMPTY_PARAMETER
        );
        // mtypes: only those; an empty list filters nothing.
        let h40 = h(&mut g, vec![("mtypes", Value::Array(vec![40.into()]))]);
        assert_eq!(num(&h40, "num"), 10);
        assert!(items(&h40).iter().all(|x| x[2] == Value::from(40)));
        assert_eq!(
            num(&h(&mut g, vec![("mtypes", Value::Array(vec![]))]), "num"),
            20
        );
        let bad =
            map! {"ouid": B, "desc": false, "num": 5, "mtypes": Value::Array(vec![999.into()])};
        assert_eq!(g.err(a, "getp2pmsg", bad), EMPTY_PARAMETER);
        // begin <= mtime <= end, both inclusive.
        let w = h(&mut g, vec![("begin", 1_050.into()), ("end", 1_100.into())]);
        let times: Vec<i64> = items(&w).iter().map(|x| x[7].as_i64().unwrap()).collect();
        assert_eq!(times, vec![1_050, 1_060, 1_070, 1_080, 1_090, 1_100]);
        assert_eq!((num(&w, "begin"), num(&w, "end")), (1_100, 1_100));
        let w = h(
            &mut g,
            vec![
                ("begin", 1_050.into()),
                ("end", 1_100.into()),
                ("desc", true.into()),
            ],
        );
        assert_eq!(
            items(&w)
                .iter()
                .map(|x| x[7].as_i64().unwrap())
                .collect::<Vec<_>>(),
            vec![1_100, 1_090, 1_080, 1_070, 1_060, 1_050]
        );
        assert_eq!((num(&w, "begin"), num(&w, "end")), (1_050, 1_050));
        // lastid: ascending takes greater ids, descending smaller ones; 0 is no bound.
        let mid_id = all[10];
        let up = ids_of(&h(
            &mut g,
            vec![("lastid", mid_id.into()), ("num", 3.into())],
        ));
        assert_eq!(up, vec![mid_id + 1, mid_id + 2, mid_id + 3]);
        let down = ids_of(&h(
            &mut g,
            vec![
                ("lastid", mid_id.into()),
                ("num", 3.into()),
                ("desc", true.into()),
            ],
        ));
        assert_eq!(down, vec![mid_id - 1, mid_id - 2, mid_id - 3]);
        let newest = ids_of(&h(
            &mut g,
            vec![
                ("lastid", 0.into()),
                ("num", 1.into()),
                ("desc", true.into()),
            ],
        ));
        assert_eq!(newest, vec![all[0] + 29]);
        // Nothing found: everything echoed back.
        let none = h(
            &mut g,
            vec![
                ("begin", 5_000.into()),
                ("end", 6_000.into()),
                ("lastid", 3.into()),
            ],
        );
        assert_eq!(
            [
                num(&none, "num"),
                num(&none, "lastid"),
                num(&none, "begin"),
                num(&none, "end")
            ],
            [0, 3, 5_000, 6_000]
        );
        let none = g.history(a, "getp2pmsg", vec![("target", C.into())]);
        assert_eq!(
            [
                num(&none, "num"),
                num(&none, "lastid"),
                num(&none, "begin"),
                num(&none, "end")
            ],
            [0, 0, 0, 0]
        );
        // The same conversation seen from the other side, with directions.
        let hb = g.history(
            b,
            "getp2pmsg",
            vec![("target", A.into()), ("num", 1.into())],
        );
        let first = &items(&hb)[0];
        assert_eq!(
            first,
            &vec![
                all[0].into(),
                2.into(),
                40.into(),
                1.into(),
                false.into(),
                "m1".into(),
                "{}".into(),
                1_000.into()
            ]
        );
    }
}
