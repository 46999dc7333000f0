use super::*;
use crate::ceiling::{CapabilitySet, Policy};
use crate::store::{MemoryUserDirectory, UserRecord};
use tower_sessions_core::session_store;

fn alice(stamp: u64) -> UserRecord {
    UserRecord::new("alice", Policy::unrestricted()).with_credential_stamp(stamp)
}

fn sessions_of(users: &MemoryUserDirectory) -> Sessions {
    Sessions::new(Arc::new(users.clone()), Duration::from_secs(3600))
}

fn request(cookie: Option<&str>) -> http::request::Parts {
    let mut request = http::Request::get("/");
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, format!("theme=dark; {SESSION_COOKIE}={cookie}"));
    }
    request.body(()).unwrap().into_parts().0
}

async fn who(sessions: &Sessions, cookie: &str) -> Option<String> {
    sessions
        .resolve_session(&request(Some(cookie)))
        .await
        .unwrap()
        .map(|principal| principal.user_id().as_str().to_owned())
}

#[tokio::test]
async fn a_begun_session_resolves_until_it_is_ended() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = sessions_of(&users);
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    assert!(is_session_secret(&cookie), "256 bits, hex: {cookie}");
    assert_eq!(who(&sessions, &cookie).await.as_deref(), Some("alice"));
    assert_eq!(
        sessions.user(&cookie).await.unwrap(),
        Some(UserId::from("alice"))
    );
    // Another handle on the same sessions (a clone: what the routers hold) sees it too.
    assert_eq!(
        who(&sessions.clone(), &cookie).await.as_deref(),
        Some("alice")
    );

    sessions.end(&cookie).await.unwrap();
    assert_eq!(who(&sessions, &cookie).await, None);
    assert_eq!(sessions.user(&cookie).await.unwrap(), None);
}

#[tokio::test]
async fn no_cookie_or_one_not_given_is_no_session() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = sessions_of(&users);
    sessions.begin(UserId::from("alice")).await.unwrap();
    assert!(
        sessions
            .resolve_session(&request(None))
            .await
            .unwrap()
            .is_none()
    );
    for forged in ["", "x", &"0".repeat(64), &"g".repeat(64), &"ab".repeat(40)] {
        assert_eq!(who(&sessions, forged).await, None, "{forged:?}");
        sessions.end(forged).await.unwrap();
    }
}

#[tokio::test]
async fn a_password_change_ends_a_begun_session_and_deletes_its_record() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let store = tower_sessions_memory_store::MemoryStore::default();
    let sessions = Sessions::with_store(
        Arc::new(users.clone()),
        Duration::from_secs(3600),
        store.clone(),
    );
    let begun = sessions.begin(UserId::from("alice")).await.unwrap();
    // A session not tied to credentials outlives the change.
    let started = sessions.start(UserId::from("alice")).await.unwrap();
    users.insert(alice(2));
    assert_eq!(who(&sessions, &begun).await, None);
    assert_eq!(
        store.load(&record_id(&begun)).await.unwrap(),
        None,
        "deleted"
    );
    assert_eq!(who(&sessions, &started).await.as_deref(), Some("alice"));
    // Signing in again with the new password works.
    let again = sessions.begin(UserId::from("alice")).await.unwrap();
    assert_eq!(who(&sessions, &again).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn the_role_is_read_at_every_request() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = sessions_of(&users);
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    let can_write = |sessions: Sessions, cookie: String| async move {
        sessions
            .resolve_session(&request(Some(&cookie)))
            .await
            .unwrap()
            .map(|principal| principal.can("posts:write"))
    };
    assert_eq!(
        can_write(sessions.clone(), cookie.clone()).await,
        Some(true)
    );
    let reader = Policy::allow(CapabilitySet::parse(["posts:read"]).unwrap());
    assert!(users.set_role(&UserId::from("alice"), reader));
    assert_eq!(
        can_write(sessions.clone(), cookie.clone()).await,
        Some(false)
    );
    assert!(users.set_active(&UserId::from("alice"), false));
    assert_eq!(can_write(sessions.clone(), cookie.clone()).await, None);
    users.remove(&UserId::from("alice"));
    assert_eq!(can_write(sessions, cookie).await, None);
}

#[tokio::test]
async fn the_store_holds_a_digest_of_the_cookie_the_user_and_the_stamp_only() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(7));
    let store = tower_sessions_memory_store::MemoryStore::default();
    let lifetime = Duration::from_secs(600);
    let sessions = Sessions::with_store(Arc::new(users), lifetime, store.clone());
    let before = OffsetDateTime::now_utc();
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    let record = store.load(&record_id(&cookie)).await.unwrap().unwrap();
    let digest = Sha256::digest(cookie.as_bytes());
    assert_eq!(record.id.0.to_le_bytes(), digest[..16]);
    let mut keys: Vec<&str> = record.data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, [STAMP, USER]);
    assert_eq!(record.data[USER], "alice");
    assert_eq!(record.data[STAMP], 7);
    let stored = format!("{record:?} {}", record.id);
    assert!(!stored.contains(&cookie), "{stored}");
    let expiry = record.expiry_date - before;
    assert!(expiry >= lifetime && expiry < lifetime + Duration::from_secs(5));
}

#[tokio::test]
async fn an_expired_session_is_no_session() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = Sessions::new(Arc::new(users), Duration::from_millis(20));
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    assert_eq!(who(&sessions, &cookie).await.as_deref(), Some("alice"));
    tokio::time::sleep(Duration::from_millis(40)).await;
    assert_eq!(who(&sessions, &cookie).await, None);
}

#[tokio::test]
async fn a_lifetime_past_any_date_is_cut_to_a_century() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = Sessions::new(Arc::new(users), Duration::MAX);
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    assert_eq!(who(&sessions, &cookie).await.as_deref(), Some("alice"));
}

/// A store that cannot answer.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl SessionStore for Down {
    async fn save(&self, _: &Record) -> session_store::Result<()> {
        Err(session_store::Error::Backend("down".into()))
    }
    async fn load(&self, _: &Id) -> session_store::Result<Option<Record>> {
        Err(session_store::Error::Backend("down".into()))
    }
    async fn delete(&self, _: &Id) -> session_store::Result<()> {
        Err(session_store::Error::Backend("down".into()))
    }
}

#[tokio::test]
async fn a_store_that_cannot_answer_is_unavailable_not_signed_out() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let sessions = Sessions::with_store(Arc::new(users), Duration::from_secs(60), Down);
    assert!(sessions.begin(UserId::from("alice")).await.is_err());
    assert!(sessions.end(&"a".repeat(64)).await.is_err());
    let resolved = sessions
        .resolve_session(&request(Some(&"a".repeat(64))))
        .await;
    assert!(
        matches!(resolved, Err(ResolveError::Unavailable(_))),
        "{resolved:?}"
    );
    // A cookie that cannot be a session is refused without asking the store.
    let resolved = sessions.resolve_session(&request(Some("forged"))).await;
    assert!(matches!(resolved, Ok(None)), "{resolved:?}");
}

/// A store whose `create` finds the first id it is given taken, and draws another.
#[derive(Debug, Clone, Default)]
struct Colliding {
    inner: tower_sessions_memory_store::MemoryStore,
    moved_to: Arc<std::sync::Mutex<Option<Id>>>,
}

#[async_trait::async_trait]
impl SessionStore for Colliding {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        {
            let mut moved_to = self.moved_to.lock().unwrap();
            if moved_to.is_none() {
                record.id = Id(record.id.0.wrapping_add(1));
                *moved_to = Some(record.id);
            }
        }
        self.inner.create(record).await
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.inner.save(record).await
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

#[tokio::test]
async fn a_record_the_store_moved_to_another_id_is_removed_and_a_new_cookie_drawn() {
    let users = MemoryUserDirectory::new();
    users.insert(alice(1));
    let store = Colliding::default();
    let sessions = Sessions::with_store(Arc::new(users), Duration::from_secs(60), store.clone());
    let cookie = sessions.begin(UserId::from("alice")).await.unwrap();
    assert_eq!(who(&sessions, &cookie).await.as_deref(), Some("alice"));
    let moved_to = store.moved_to.lock().unwrap().expect("a collision");
    assert_eq!(
        store.load(&moved_to).await.unwrap(),
        None,
        "answers to no cookie: gone"
    );
}
