//! Never-panics properties: arbitrary bytes, arbitrary JSON and mutated real requests go through the
//! whole engine (plan, normalise, judge, reply, audit record) without a panic. A small seeded
//! generator keeps the run deterministic and the dependency list short.

use scimguard::audit::{Completion, RequestFacts};
use scimguard::scim::{Headers, RequestView};
use scimguard::{Engine, Facts};
use serde_json::{json, Value};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const WORDS: [&str; 16] = [
    "members",
    "active",
    "roles",
    "op",
    "path",
    "value",
    "Operations",
    "add",
    "Replace",
    "REMOVE",
    "bulkId:x",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "emails[type eq \"work\"].value",
    "False",
    "[",
    "\"",
];

fn json_value(r: &mut Rng, depth: usize) -> Value {
    match if depth > 5 { r.below(4) } else { r.below(7) } {
        0 => Value::Null,
        1 => json!(r.below(2) == 0),
        2 => json!(r.next() as i64 % 1000),
        3 => json!(r.pick(&WORDS)),
        4 => Value::Array((0..r.below(4)).map(|_| json_value(r, depth + 1)).collect()),
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..r.below(5) {
                m.insert(r.pick(&WORDS).to_string(), json_value(r, depth + 1));
            }
            Value::Object(m)
        }
    }
}

fn engine() -> Engine {
    crate::default_engine()
}

fn run(e: &Engine, method: &str, path: &str, body: &[u8]) {
    let headers = Headers::from_pairs([(
        "content-type".to_string(),
        "application/scim+json".to_string(),
    )]);
    let view = RequestView {
        method,
        path,
        headers: &headers,
        body: Some(body),
    };
    let ev = e.evaluate(&view, &Facts::default());
    let _ = ev.reply();
    let _ = ev.to_json();
    let _ = ev.audit_record(&RequestFacts::default(), &Completion::default());
}

const PATHS: [&str; 8] = [
    "/scim/v2/Users/u1",
    "/scim/v2/Groups/g1",
    "/scim/v2/Bulk",
    "/scim/v2/Users",
    "/scim/v2/Groups",
    "/scim/v2/Me",
    "/scim/v2/%zz",
    "/scim/v2/Users/.search",
];
const METHODS: [&str; 6] = ["PATCH", "POST", "PUT", "DELETE", "GET", "patch"];

#[test]
fn arbitrary_bytes_never_panic() {
    let e = engine();
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5000 {
        let len = r.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| (r.next() & 0xff) as u8).collect();
        run(&e, r.pick::<&str>(&METHODS), r.pick::<&str>(&PATHS), &bytes);
        let path: String = (0..r.below(40))
            .map(|_| char::from((r.next() % 95 + 32) as u8))
            .collect();
        run(&e, "PATCH", &format!("/scim/v2/{path}"), b"{}");
    }
}

#[test]
fn arbitrary_json_never_panics() {
    let e = engine();
    let mut r = Rng(42);
    for _ in 0..5000 {
        let v = json_value(&mut r, 0);
        let wrapped = match r.below(3) {
            0 => v,
            1 => json!({"Operations": [v]}),
            _ => {
                json!({"Operations": [{"method": "PATCH", "path": "/Groups/g1", "data": v, "bulkId": "b"}]})
            }
        };
        run(
            &e,
            r.pick::<&str>(&METHODS),
            r.pick::<&str>(&PATHS),
            wrapped.to_string().as_bytes(),
        );
    }
}

#[test]
fn mutated_real_requests_never_panic() {
    let e = engine();
    let seeds = [
        r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members[value eq \"u1\"].display","value":[{"value":"u1"}]}]}"#,
        r#"{"Operations":[{"method":"POST","path":"/Users","bulkId":"q1","data":{"userName":"x"}},{"method":"PATCH","path":"/Groups/bulkId:q1","data":[{"op":"add","path":"members","value":[{"value":"bulkId:q1"}]}]}]}"#,
    ];
    let mut r = Rng(7);
    for _ in 0..5000 {
        let mut bytes = r.pick(&seeds).as_bytes().to_vec();
        for _ in 0..1 + r.below(4) {
            let i = r.below(bytes.len());
            match r.below(3) {
                0 => bytes[i] = (r.next() & 0x7f) as u8,
                1 => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, *r.pick(b"[]{}\":,\\ ")),
            }
        }
        run(&e, r.pick::<&str>(&METHODS), r.pick::<&str>(&PATHS), &bytes);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let e = engine();
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    run(&e, "POST", "/scim/v2/Users", deep.as_bytes());
}
