//! Policy validation messages: rule, pointer, line, expectation, did-you-mean, all in one pass.

use scimguard::Engine;

fn errors(policy: &str) -> Vec<scimguard::policy::PolicyError> {
    Engine::from_json(policy)
        .expect_err("policy should be invalid")
        .0
}

const POLICY: &str = r#"{
  "version": 1,
  "mode": "enforce",
  "rules": [
    {
      "id": "r1",
      "description": "x",
      "severity": "hihg",
      "action": "block",
      "when": {"change": {"atribute": "roles"}}
    },
    {
      "id": "r2",
      "description": "y",
      "severity": "low",
      "action": "tag",
      "when": {"event": "user_deleteed"}
    }
  ]
}"#;

#[test]
fn every_error_in_one_pass_with_place_and_hint() {
    let errs = errors(POLICY);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    let sev = &errs[0];
    assert_eq!(sev.rule.as_deref(), Some("r1"));
    assert_eq!(sev.pointer, "/rules/0/severity");
    assert_eq!(sev.line, Some(8));
    assert!(
        sev.message.contains("`hihg` is not one of"),
        "{}",
        sev.message
    );
    assert_eq!(sev.help.as_deref(), Some("did you mean `high`?"));
    let field = &errs[1];
    assert_eq!(field.pointer, "/rules/0/when/change/atribute");
    assert_eq!(field.line, Some(10));
    assert_eq!(field.help.as_deref(), Some("did you mean `attribute`?"));
    let event = &errs[2];
    assert_eq!(event.rule.as_deref(), Some("r2"));
    assert_eq!(event.line, Some(17));
    assert_eq!(event.help.as_deref(), Some("did you mean `user_deleted`?"));
}

#[test]
fn display_names_rule_line_and_field() {
    let text = Engine::from_json(POLICY).unwrap_err().to_string();
    assert!(
        text.contains("line 10: rule `r1`: unknown field `atribute`"),
        "{text}"
    );
}

#[test]
fn unknown_top_level_field_and_bad_regex() {
    let errs = errors(
        r#"{"version":1,"rulez":[],"rules":[{"id":"a","description":"d","severity":"low","action":"log","when":{"actor":{"matches":"(unclosed"}}}]}"#,
    );
    assert!(
        errs.iter()
            .any(|e| e.pointer == "/rulez" && e.help.as_deref() == Some("did you mean `rules`?")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.pointer == "/rules/0/when/actor/matches"
                && e.message.contains("invalid regular expression")),
        "{errs:#?}"
    );
}

#[test]
fn structural_mistakes() {
    let errs = errors(
        r#"{"version":2,"rules":[{"id":"a","description":"d","severity":"low","action":"log","when":{"method":"POST","event":"user_deleted"}},{"id":"a","description":"d","severity":"low","action":"log","when":{"count":{"of":"deletes","at_least":0}}}]}"#,
    );
    let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(msgs.iter().any(|m| m.contains("expected `1`")), "{msgs:#?}");
    assert!(
        msgs.iter().any(|m| m.contains("exactly one key")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("duplicate rule id `a`")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("cannot count `deletes`")),
        "{msgs:#?}"
    );
    assert!(msgs.iter().any(|m| m.contains("from 1 to")), "{msgs:#?}");
}

#[test]
fn invalid_json_names_the_line() {
    let errs = errors("{\n  \"version\": 1,\n  \"rules\": [\n    {\"id\": \"a\",}\n  ]\n}");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, Some(4), "{errs:#?}");
    let dup = errors("{\"version\":1,\"rules\":[],\"rules\":[]}");
    assert!(dup[0].message.contains("duplicate key `rules`"), "{dup:#?}");
}

#[test]
fn default_policy_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/policies/default.json"
    ))
    .unwrap();
    let engine = Engine::from_json(&text).unwrap();
    assert!(engine.policy().rules.len() >= 8);
    assert!(
        engine
            .policy()
            .rules
            .iter()
            .all(|r| r.description.len() > 20),
        "every rule is documented"
    );
}
