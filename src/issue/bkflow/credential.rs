//! `create_credential` (seed 004) and the field rules the admin API's update shares.

use super::{check_space, open_call, py_json_dumps, view, view_error, SpaceCall};
use crate::issue::{Call, Reply};
use crate::store::credentials::{CredentialError, CredentialFields};
use crate::store::op::Op;
use http::StatusCode;
use serde_json::{json, Map, Value};

/// A refusal: the view's `code` (400 field errors, 500 others) and message.
pub type FieldError = (u16, String);

fn text<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

/// Seed 004's rules: name 1–32, desc ≤ 32, type `BK_APP`, content with a non-blank code and a
/// secret that is not all `*`.
pub fn parse_fields(m: &Map<String, Value>) -> Result<CredentialFields, FieldError> {
    let mut errors: Vec<(&str, String)> = Vec::new();
    let name = match m.get("name") {
        None | Some(Value::Null) => {
            errors.push(("name", "该字段是必填项。".into()));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(("name", "该字段不能为空。".into()));
            None
        }
        Some(Value::String(s)) if s.chars().count() > 32 => {
            errors.push(("name", "请确保这个字段不能超过 32 个字符。".into()));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(("name", "不是有效的字符串。".into()));
            None
        }
    };
    let desc = match m.get("desc") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() > 32 => {
            errors.push(("desc", "请确保这个字段不能超过 32 个字符。".into()));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(("desc", "不是有效的字符串。".into()));
            None
        }
    };
    if text(m, "type").is_none() {
        errors.push(("type", "该字段是必填项。".into()));
    }
    let content = m.get("content").and_then(Value::as_object);
    let code = content
        .and_then(|c| text(c, "bk_app_code"))
        .filter(|s| !s.trim().is_empty());
    let secret = content
        .and_then(|c| text(c, "bk_app_secret"))
        .filter(|s| !s.trim().is_empty());
    match (content, code, secret) {
        (None, ..) => errors.push(("content", "该字段是必填项。".into())),
        (_, None, _) => errors.push(("content", "bk_app_code".into())),
        (_, _, None) => errors.push(("content", "bk_app_secret".into())),
        (_, _, Some(s)) if s.chars().all(|c| c == '*') => {
            errors.push(("content", "bk_app_secret 格式有误 不应全为 * 字符".into()))
        }
        _ => {}
    }
    if !errors.is_empty() {
        return Err((400, py_json_dumps(&errors)));
    }
    match text(m, "type") {
        Some("BK_APP") => {}
        Some(other) => return Err((500, format!("不支持的凭证类型: type={other}"))),
        None => unreachable!("checked above"),
    }
    Ok(CredentialFields {
        name: name.expect("checked"),
        desc,
        app_code: code.expect("checked").to_owned(),
        app_secret: secret.expect("checked").to_owned(),
    })
}

/// The readable refusal of a write (DIALECTS decision 3: no raw database error).
pub fn write_error(e: &CredentialError, name: &str) -> FieldError {
    match e {
        CredentialError::Duplicate => (500, format!("凭证名称已存在: name={name}")),
        CredentialError::NotFound => (500, "凭证不存在".to_owned()),
    }
}

/// `POST {prefix}/space/{space_id}/create_credential/`.
pub async fn create(call: Call<'_>) -> Reply {
    let (rt, shared) = (call.ctx.rt, call.ctx.shared);
    let SpaceCall {
        space,
        trace,
        doc,
        app,
        ..
    } = open_call(call).await?;
    check_space(rt, &app, space)?;
    let Some(Value::Object(m)) = doc else {
        return Err(view_error(
            500,
            "Expecting value: line 1 column 1 (char 0)",
            &trace,
        ));
    };
    let fields = match parse_fields(&m) {
        Ok(f) => f,
        Err((code, msg)) => return Err(view_error(code, &msg, &trace)),
    };
    let name = fields.name.clone();
    let id = shared
        .store
        .allocate_id("credential", shared.credentials.max_id())
        .await?;
    match shared.credentials.create(space, fields, id) {
        Ok(c) => {
            shared
                .store
                .commit(vec![Op::Cred(shared.credentials.row(&c))])
                .await?;
            tracing::info!(space, credential = c.id, app = %app.id, "credential created");
            let Value::Object(obj) =
                json!({ "result": true, "code": 0, "message": "", "data": c.display() })
            else {
                unreachable!("a json! object literal")
            };
            Ok(view(StatusCode::OK, obj, &trace))
        }
        Err(e) => {
            let (code, msg) = write_error(&e, &name);
            Err(view_error(code, &msg, &trace))
        }
    }
}
