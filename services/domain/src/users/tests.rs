//! Service rules of the user surface over an in-memory [`UserStore`].

use super::rules::ROOT_USER_ID;
use super::*;
use crate::ports::users::{InviteCheck, InviteRow, InviteTenant, NewInvite, UserRow};
use crate::time::Ts;
use crate::{AuthInfo, AuthType, Ident};
use async_trait::async_trait;
use parking_lot::Mutex;
use uuid::Uuid;

#[derive(Clone)]
struct U {
    row: UserRow,
    password: Option<String>,
}

#[derive(Default)]
struct Mem {
    users: Mutex<Vec<U>>,
}

fn obj(u: &U) -> Value {
    json!({"id": u.row.id, "username": u.row.username, "access": u.row.access, "active": u.row.active})
}

impl Mem {
    fn add(&self, username: &str, access: Role, password: bool) -> Uuid {
        let id = if username == "root" {
            ROOT_USER_ID
        } else {
            Uuid::new_v4()
        };
        self.users.lock().push(U {
            row: UserRow {
                id,
                username: username.into(),
                access,
                active: true,
            },
            password: password.then(|| password::hash("correct horse battery").unwrap()),
        });
        id
    }
    fn login_roots(users: &[U]) -> usize {
        users
            .iter()
            .filter(|u| u.row.active && u.row.access == Role::Root && u.password.is_some())
            .count()
    }
}

#[async_trait]
impl UserStore for Mem {
    async fn list(&self, _: &Ident, _: i64, _: i64, _: bool) -> Result<Vec<Value>> {
        Ok(self.users.lock().iter().map(obj).collect())
    }
    async fn object(&self, _: &Ident, id: Uuid) -> Result<Option<Value>> {
        Ok(self.users.lock().iter().find(|u| u.row.id == id).map(obj))
    }
    async fn row(&self, _: &Ident, id: Uuid) -> Result<Option<UserRow>> {
        Ok(self
            .users
            .lock()
            .iter()
            .find(|u| u.row.id == id)
            .map(|u| u.row.clone()))
    }
    async fn create(&self, _: &Ident, n: NewUser) -> Result<Value> {
        let mut g = self.users.lock();
        if g.iter().any(|u| u.row.username == n.username.as_str()) {
            return Err(Error::new(ErrorCode::AuthUsernameExists));
        }
        let u = U {
            row: UserRow {
                id: Uuid::new_v4(),
                username: n.username.as_str().into(),
                access: n.access,
                active: true,
            },
            password: n.password_hash,
        };
        g.push(u.clone());
        Ok(obj(&u))
    }
    async fn update(
        &self,
        _: &Ident,
        id: Uuid,
        c: &UserChange,
        guard: bool,
    ) -> Result<Option<Value>> {
        let mut g = self.users.lock();
        let before = Mem::login_roots(&g);
        let Some(i) = g.iter().position(|u| u.row.id == id && u.row.active) else {
            return Ok(None);
        };
        let saved = g[i].clone();
        if let Some(a) = c.access {
            g[i].row.access = a;
        }
        if guard && before > 0 && Mem::login_roots(&g) == 0 {
            g[i] = saved;
            return Err(Error::new(ErrorCode::AuthLastRoot));
        }
        Ok(Some(obj(&g[i])))
    }
    async fn password_hash(&self, _: &Ident, id: Uuid) -> Result<Option<String>> {
        Ok(self
            .users
            .lock()
            .iter()
            .find(|u| u.row.id == id)
            .and_then(|u| u.password.clone()))
    }
    async fn set_password(&self, _: &Ident, id: Uuid, hash: &str) -> Result<Ts> {
        let mut g = self.users.lock();
        if let Some(u) = g.iter_mut().find(|u| u.row.id == id) {
            u.password = Some(hash.into());
        }
        Ok(Ts::now())
    }
    async fn deactivate(&self, _: &Ident, id: Uuid, guard: bool) -> Result<Option<Ts>> {
        let mut g = self.users.lock();
        let before = Mem::login_roots(&g);
        let Some(i) = g.iter().position(|u| u.row.id == id && u.row.active) else {
            return Ok(None);
        };
        g[i].row.active = false;
        if guard && before > 0 && Mem::login_roots(&g) == 0 {
            g[i].row.active = true;
            return Err(Error::new(ErrorCode::AuthLastRoot));
        }
        Ok(Some(Ts::now()))
    }
    async fn create_invite(&self, _: &Ident, _: NewInvite) -> Result<InviteRow> {
        Err(Error::internal("not in this test"))
    }
    async fn list_invites(&self, _: &Ident, _: i64, _: i64) -> Result<Vec<InviteRow>> {
        Ok(Vec::new())
    }
    async fn revoke_invite(&self, _: &Ident, _: Uuid) -> Result<bool> {
        Ok(false)
    }
    async fn invite_tenant(&self, _: &str) -> Result<Option<InviteTenant>> {
        Ok(None)
    }
    async fn redeem_invite(
        &self,
        _: &Ident,
        _: &str,
        _: InviteCheck<'_>,
        _: NewUser,
        _: Option<crate::ports::machine::ProvisionKey>,
    ) -> Result<(Uuid, Role)> {
        Err(Error::new(ErrorCode::AuthInviteInvalid))
    }
}

fn ctx_for(user_id: Uuid, role: Role, sudo_token: bool, fake: bool) -> TenantCtx {
    TenantCtx {
        tenant_id: Uuid::new_v4(),
        tenant: Ident::trusted("acme"),
        schema: Ident::trusted("ns_tenant_acme"),
        tenant_status: "active".into(),
        user_id,
        username: "x".into(),
        role,
        auth: AuthInfo {
            auth_type: AuthType::Username,
            token_id: None,
            key_id: None,
            key_fingerprint: None,
            api_key_id: None,
            is_sudo_token: sudo_token,
            is_fake: fake,
            faked_by: None,
            issued_at: None,
            expires_at: None,
        },
        meta_version: 0,
        request_id: "r".into(),
    }
}

struct World {
    svc: UsersService,
    owner: Uuid,
    full: Uuid,
    edit: Uuid,
}

fn world() -> World {
    let mem = Arc::new(Mem::default());
    mem.add("root", Role::Root, false);
    let owner = mem.add("owner", Role::Root, true);
    let full = mem.add("fuller", Role::Full, true);
    let edit = mem.add("editor", Role::Edit, true);
    World {
        svc: UsersService::new(mem),
        owner,
        full,
        edit,
    }
}

fn code(r: Result<Value>) -> ErrorCode {
    r.unwrap_err().code
}

#[tokio::test]
async fn create_needs_sudo_and_no_escalation() {
    let w = world();
    let edit = ctx_for(w.edit, Role::Edit, false, false);
    assert_eq!(
        code(w.svc.create(&edit, Some(json!({"username": "x"}))).await),
        ErrorCode::AuthSudoRequired
    );
    let full_sudo = ctx_for(w.full, Role::Full, true, false);
    assert_eq!(
        code(
            w.svc
                .create(&full_sudo, Some(json!({"username": "x", "access": "root"})))
                .await
        ),
        ErrorCode::AuthRoleInsufficient
    );
    let u = w
        .svc
        .create(&full_sudo, Some(json!({"auth": "carol", "access": "full"})))
        .await
        .unwrap();
    assert_eq!(u["username"], "carol");
    assert_eq!(u["access"], "full");
    assert_eq!(
        code(
            w.svc
                .create(&full_sudo, Some(json!({"username": "a", "auth": "b"})))
                .await
        ),
        ErrorCode::ValidationFieldInvalid
    );
    // A fake token is never sudo.
    let fake_root = ctx_for(w.owner, Role::Root, false, true);
    assert_eq!(
        code(
            w.svc
                .create(&fake_root, Some(json!({"username": "y"})))
                .await
        ),
        ErrorCode::AuthSudoRequired
    );
}

#[tokio::test]
async fn update_rules() {
    let w = world();
    let edit = ctx_for(w.edit, Role::Edit, false, false);
    let e = w
        .svc
        .update(&edit, "me", Some(json!({"access": "root"})))
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::AuthSudoRequired);
    assert_eq!(e.data.unwrap()["fields"], json!(["access"]));
    assert_eq!(
        code(
            w.svc
                .update(&edit, &w.full.to_string(), Some(json!({"name": "n"})))
                .await
        ),
        ErrorCode::AuthSudoRequired
    );
    assert!(w
        .svc
        .update(&edit, "me", Some(json!({"name": "Ed"})))
        .await
        .is_ok());
    assert_eq!(
        code(w.svc.update(&edit, "me", Some(json!({"name": null}))).await),
        ErrorCode::ValidationFieldInvalid
    );
    // A full sudo caller cannot touch a root user, nor promote anybody to root.
    let full_sudo = ctx_for(w.full, Role::Full, true, false);
    assert_eq!(
        code(
            w.svc
                .update(&full_sudo, &w.owner.to_string(), Some(json!({"name": "x"})))
                .await
        ),
        ErrorCode::AuthRoleInsufficient
    );
    assert_eq!(
        code(
            w.svc
                .update(
                    &full_sudo,
                    &w.edit.to_string(),
                    Some(json!({"access": "root"}))
                )
                .await
        ),
        ErrorCode::AuthRoleInsufficient
    );
    assert_eq!(
        code(
            w.svc
                .update(&full_sudo, "me", Some(json!({"access": "root"})))
                .await
        ),
        ErrorCode::AuthRoleInsufficient
    );
    assert!(w
        .svc
        .update(
            &full_sudo,
            &w.edit.to_string(),
            Some(json!({"access": "full"}))
        )
        .await
        .is_ok());
    // The last root that can log in cannot demote itself; the built-in root never.
    let root = ctx_for(w.owner, Role::Root, false, false);
    assert_eq!(
        code(
            w.svc
                .update(&root, "me", Some(json!({"access": "full"})))
                .await
        ),
        ErrorCode::AuthLastRoot
    );
    assert_eq!(
        code(
            w.svc
                .update(
                    &root,
                    &ROOT_USER_ID.to_string(),
                    Some(json!({"access": "edit"}))
                )
                .await
        ),
        ErrorCode::AuthLastRoot
    );
    assert_eq!(
        code(w.svc.update(&root, "not-a-uuid", None).await),
        ErrorCode::AuthUserNotFound
    );
}

#[tokio::test]
async fn password_and_deactivation() {
    let w = world();
    let edit = ctx_for(w.edit, Role::Edit, false, false);
    assert_eq!(
        code(
            w.svc
                .change_password(&edit, "me", Some(json!({"new_password": "new password 1"})))
                .await
        ),
        ErrorCode::ValidationFieldMissing
    );
    assert_eq!(
        code(
            w.svc
                .change_password(
                    &edit,
                    "me",
                    Some(
                        json!({"current_password": "wrong one!", "new_password": "new password 1"})
                    )
                )
                .await
        ),
        ErrorCode::AuthPasswordMismatch
    );
    assert!(w
        .svc
        .change_password(
            &edit,
            "me",
            Some(json!({"current_password": "correct horse battery", "new_password": "new password 1"}))
        )
        .await
        .is_ok());
    let fake = ctx_for(w.edit, Role::Edit, false, true);
    assert_eq!(
        code(w.svc.change_password(&fake, "me", Some(json!({}))).await),
        ErrorCode::AuthImpersonationRestricted
    );
    let full_sudo = ctx_for(w.full, Role::Full, true, false);
    assert_eq!(
        code(
            w.svc
                .change_password(
                    &full_sudo,
                    &w.owner.to_string(),
                    Some(json!({"new_password": "new password 1"}))
                )
                .await
        ),
        ErrorCode::AuthRoleInsufficient
    );

    assert_eq!(
        code(
            w.svc
                .deactivate(&edit, "me", Some(json!({"confirm": false})))
                .await
        ),
        ErrorCode::ValidationConfirmationRequired
    );
    let root = ctx_for(w.owner, Role::Root, false, false);
    assert_eq!(
        code(
            w.svc
                .deactivate(
                    &root,
                    &ROOT_USER_ID.to_string(),
                    Some(json!({"confirm": true}))
                )
                .await
        ),
        ErrorCode::AuthLastRoot
    );
    assert_eq!(
        code(
            w.svc
                .deactivate(&root, "me", Some(json!({"confirm": true})))
                .await
        ),
        ErrorCode::AuthLastRoot
    );
    let v = w
        .svc
        .deactivate(
            &root,
            &w.edit.to_string(),
            Some(json!({"confirm": true, "reason": "left"})),
        )
        .await
        .unwrap();
    assert_eq!(v["reason"], "left");
    // Gone: a second deactivation finds nobody.
    assert_eq!(
        code(
            w.svc
                .deactivate(&root, &w.edit.to_string(), Some(json!({"confirm": true})))
                .await
        ),
        ErrorCode::AuthUserNotFound
    );
}

#[tokio::test]
async fn reads() {
    let w = world();
    let edit = ctx_for(w.edit, Role::Edit, false, false);
    assert!(w.svc.get(&edit, "me").await.is_ok());
    assert_eq!(
        code(w.svc.get(&edit, &w.full.to_string()).await),
        ErrorCode::AuthSudoRequired
    );
    assert_eq!(
        code(w.svc.list(&edit, None, None, false).await),
        ErrorCode::AuthSudoRequired
    );
    let root = ctx_for(w.owner, Role::Root, false, false);
    assert_eq!(
        w.svc
            .list(&root, None, None, false)
            .await
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        code(w.svc.get(&root, &Uuid::new_v4().to_string()).await),
        ErrorCode::AuthUserNotFound
    );
    assert_eq!(
        code(w.svc.list_invites(&edit, None, None).await),
        ErrorCode::AuthRoleInsufficient
    );
}
