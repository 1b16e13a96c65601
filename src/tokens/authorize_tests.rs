use super::*;

const LIST: &str = r#"
[[token]]
id = "04A1B2C3D4E5F6"
user = "Anna Berg"
group = "residents"

[[token]]
id = "visitor-17"
user = "Visitor 17"
enabled = false
"#;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_default()
}

struct World {
    list: TokenList,
    cache: AuthCache,
    online: bool,
    now_s: f64,
}

impl World {
    fn new() -> Self {
        World {
            list: TokenList::parse(LIST, "tokens.toml").unwrap(),
            cache: AuthCache::default(),
            online: true,
            now_s: 0.0,
        }
    }

    fn step(&self, a: &mut Authoriser, connected: bool, id: Option<&str>) -> Option<AuthRequest> {
        a.step(&AuthInput {
            connected,
            id_tag: id,
            list: &self.list,
            cache: &self.cache,
            cloud_online: self.online,
            now: t0() + chrono::Duration::milliseconds((self.now_s * 1000.0) as i64),
            now_s: self.now_s,
            cloud_timeout_s: 5.0,
        })
    }
}

fn answer(r: &AuthRequest, accepted: bool) -> AuthAnswer {
    AuthAnswer {
        request_id: r.request_id.clone(),
        token: r.token.clone(),
        accepted,
        reason: (!accepted).then(|| "card blocked".to_string()),
        expires_at: None,
    }
}

#[test]
fn free_mode_is_open_and_still_names_a_listed_owner() {
    let w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Free, None);
    assert_eq!(a.status().state, AuthState::Open);
    assert!(a.status().may_charge());
    assert_eq!(w.step(&mut a, true, None), None);
    assert!(a.status().identity.is_empty());
    assert_eq!(w.step(&mut a, true, Some("04a1b2c3d4e5f6 ")), None);
    let id = &a.status().identity;
    assert_eq!(id.user.as_deref(), Some("Anna Berg"));
    assert_eq!(id.authorized_by, Some(AuthorizedBy::Free));
    assert!(a.status().may_charge());
    // An unknown id is kept as the token, with nobody named.
    w.step(&mut a, false, None);
    w.step(&mut a, true, Some("CAFE"));
    assert_eq!(a.status().identity.token.as_deref(), Some("CAFE"));
    assert_eq!(a.status().identity.user, None);
}

#[test]
fn local_mode_waits_then_lets_a_listed_token_charge_and_refuses_others() {
    let w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Local, None);
    assert_eq!(a.status().state, AuthState::Waiting);
    w.step(&mut a, true, None);
    assert_eq!(a.status().state, AuthState::Waiting);
    assert!(!a.status().may_charge());
    assert_eq!(w.step(&mut a, true, Some("04A1B2C3D4E5F6")), None);
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Local));
    assert_eq!(a.status().identity.group.as_deref(), Some("residents"));

    // Unplugged: the next session starts from the beginning.
    w.step(&mut a, false, None);
    assert_eq!(a.status().state, AuthState::Waiting);
    assert!(a.status().identity.is_empty());

    w.step(&mut a, true, Some("DEADBEEF"));
    assert_eq!(a.status().state, AuthState::Refused);
    assert_eq!(a.status().refused.as_deref(), Some("not on the list"));
    // Another card on the same session is decided afresh.
    w.step(&mut a, true, Some("visitor-17"));
    assert_eq!(a.status().refused.as_deref(), Some("disabled"));
    w.step(&mut a, true, Some("04A1B2C3D4E5F6"));
    assert_eq!(a.status().state, AuthState::Authorized);
}

#[test]
fn an_authorised_session_stays_authorised_until_unplugged() {
    let mut w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Local, None);
    w.step(&mut a, true, Some("04A1B2C3D4E5F6"));
    assert_eq!(a.status().state, AuthState::Authorized);
    // The reader clears, another id shows up, the list is emptied by a reload.
    w.step(&mut a, true, None);
    w.step(&mut a, true, Some("DEADBEEF"));
    w.list = TokenList::default();
    w.step(&mut a, true, Some("04A1B2C3D4E5F6"));
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.user.as_deref(), Some("Anna Berg"));
}

#[test]
fn a_fixed_token_authorises_without_a_reader() {
    let w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Cloud, Some("04a1b2c3d4e5f6"));
    // Decided by the list, never asked about.
    assert_eq!(w.step(&mut a, true, None), None);
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Local));
    assert_eq!(a.status().identity.user.as_deref(), Some("Anna Berg"));
}

#[test]
fn cloud_mode_asks_and_follows_the_answer() {
    let mut w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Cloud, None);
    w.step(&mut a, true, None);
    let r = w.step(&mut a, true, Some("cafe01")).expect("asked");
    assert_eq!((r.charger.as_str(), r.token.as_str()), ("cp-1", "CAFE01"));
    assert_eq!(a.status().state, AuthState::Asking);
    assert!(!a.status().may_charge());
    // Asked once only.
    w.now_s = 1.0;
    assert_eq!(w.step(&mut a, true, Some("cafe01")), None);
    // An answer to another question changes nothing.
    let mut other = answer(&r, true);
    other.request_id = "not-ours".into();
    assert!(!a.answer(&other, &w.list));
    assert_eq!(a.status().state, AuthState::Asking);
    assert!(a.answer(&answer(&r, true), &w.list));
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Cloud));
    // A later "no" never stops a session that was let charge.
    assert!(a.answer(&answer(&r, false), &w.list));
    assert_eq!(a.status().state, AuthState::Authorized);

    w.step(&mut a, false, None);
    let r = w.step(&mut a, true, Some("04A1B2C3D4E5F6")).expect("asked");
    a.answer(&answer(&r, false), &w.list);
    assert_eq!(a.status().state, AuthState::Refused);
    assert_eq!(
        a.status().refused.as_deref(),
        Some("refused by the cloud: card blocked")
    );
}

#[test]
fn a_silent_cloud_leaves_the_list_and_the_cache_to_decide_after_the_timeout() {
    let mut w = World::new();
    w.cache.insert("cafe01", t0() + chrono::Duration::days(1));
    let mut a = Authoriser::new("cp-1", AuthMode::Cloud, None);
    let r = w.step(&mut a, true, Some("CAFE01")).expect("asked");
    w.now_s = 4.9;
    w.step(&mut a, true, Some("CAFE01"));
    assert_eq!(a.status().state, AuthState::Asking);
    w.now_s = 5.0;
    w.step(&mut a, true, Some("CAFE01"));
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Cache));
    // The late answer is too late to stop it.
    a.answer(&answer(&r, false), &w.list);
    assert_eq!(a.status().state, AuthState::Authorized);

    // Neither on the list nor cached: refused once the cloud has had its time; a late yes
    // still lets it charge.
    w.step(&mut a, false, None);
    w.now_s = 10.0;
    let r = w.step(&mut a, true, Some("BEEF")).expect("asked");
    w.now_s = 16.0;
    w.step(&mut a, true, Some("BEEF"));
    assert_eq!(a.status().state, AuthState::Refused);
    assert!(a
        .status()
        .refused
        .as_deref()
        .unwrap()
        .contains("did not answer"));
    assert_eq!(w.step(&mut a, true, Some("BEEF")), None, "not asked again");
    a.answer(&answer(&r, true), &w.list);
    assert_eq!(a.status().state, AuthState::Authorized);
}

#[test]
fn with_the_link_down_the_list_and_the_cache_decide_at_once() {
    let mut w = World::new();
    w.online = false;
    w.cache.insert("CAFE01", t0() + chrono::Duration::hours(1));
    w.cache.insert("OLD", t0() - chrono::Duration::seconds(1));
    let mut a = Authoriser::new("cp-1", AuthMode::Cloud, None);
    assert_eq!(w.step(&mut a, true, Some("04A1B2C3D4E5F6")), None);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Local));
    w.step(&mut a, false, None);
    assert_eq!(w.step(&mut a, true, Some("cafe01")), None);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Cache));
    w.step(&mut a, false, None);
    // An expired entry does not count; a disabled list entry refuses whatever the cache says.
    w.step(&mut a, true, Some("OLD"));
    assert_eq!(a.status().state, AuthState::Refused);
    assert!(a
        .status()
        .refused
        .as_deref()
        .unwrap()
        .contains("cloud offline"));
    // The link back: the refused token is put to the cloud.
    w.online = true;
    let r = w
        .step(&mut a, true, Some("OLD"))
        .expect("asked once the link is up");
    assert_eq!(a.status().state, AuthState::Asking);
    a.answer(&answer(&r, true), &w.list);
    assert_eq!(a.status().state, AuthState::Authorized);

    w.online = false;
    w.step(&mut a, false, None);
    w.cache
        .insert("visitor-17", t0() + chrono::Duration::hours(1));
    w.step(&mut a, true, Some("visitor-17"));
    assert_eq!(a.status().refused.as_deref(), Some("disabled"));
}

#[test]
fn the_link_going_down_while_asking_falls_back_at_once() {
    let mut w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Cloud, None);
    w.step(&mut a, true, Some("04A1B2C3D4E5F6")).expect("asked");
    w.online = false;
    w.now_s = 0.5;
    w.step(&mut a, true, Some("04A1B2C3D4E5F6"));
    assert_eq!(a.status().state, AuthState::Authorized);
    assert_eq!(a.status().identity.authorized_by, Some(AuthorizedBy::Local));
}

#[test]
fn a_reload_keeps_an_authorised_session_and_redecides_a_waiting_one() {
    let w = World::new();
    let mut a = Authoriser::new("cp-1", AuthMode::Local, None);
    w.step(&mut a, true, Some("04A1B2C3D4E5F6"));
    a.reconfigure(AuthMode::Cloud, None);
    assert_eq!(a.status().state, AuthState::Authorized);
    let mut b = Authoriser::new("cp-2", AuthMode::Local, None);
    w.step(&mut b, true, Some("DEADBEEF"));
    assert_eq!(b.status().state, AuthState::Refused);
    b.reconfigure(AuthMode::Free, None);
    assert_eq!(b.status().state, AuthState::Open);
    w.step(&mut b, true, Some("DEADBEEF"));
    assert!(b.status().may_charge());
}
