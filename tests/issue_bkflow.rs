//! The bkflow dialect (seed 000, DIALECTS §1-4 and §9 items 1-16) and the SPEC §4 lattice on
//! guarded routes, over real sockets.

mod support;

use serde_json::{json, Value};
use support::{Gateway, Resp, Upstream};

const SEED_REQUEST: &str = include_str!("fixtures/seeds/000_apply_token.request.json");

fn yaml(up: &Upstream, bkflow: &str) -> String {
    format!(
        r#"apps:
  - id: xxxx
    secret: xxxx
    space_id: 3
    user: admin
    grants:
      - {{ resource: TEMPLATE, id: "*", permission: MOCK }}
      - {{ resource: TASK, id: "*", permission: OPERATE }}
      - {{ resource: SCOPE, id: "project_3", permission: MOCK }}
  - {{ id: other, secret: other-secret, space_id: 4, grants: [{{ resource: TEMPLATE, id: "1", permission: VIEW }}] }}
  - {{ id: nouser, secret: nouser-secret, space_id: 5, grants: [{{ resource: TASK, id: "*", permission: VIEW }}] }}
dialects:
  bkflow: {bkflow}
upstreams:
  api: {{ targets: ["{}"] }}
routes:
  - {{ path: "/sdk/template/{{template_id}}/", methods: [GET], upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: VIEW, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}" }},
       lookup: {{ upstream: api, path: "/internal/templates/{{template_id}}", ttl: 30s }} }}
  - {{ path: "/sdk/template/{{template_id}}/update/", methods: [POST], upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: EDIT, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}" }},
       lookup: {{ upstream: api, path: "/internal/templates/{{template_id}}", ttl: 30s }} }}
  - {{ path: "/sdk/template/{{template_id}}/mock/", methods: [POST], upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: MOCK, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}" }},
       lookup: {{ upstream: api, path: "/internal/templates/{{template_id}}", ttl: 30s }} }}
  - {{ path: "/sdk/task/{{task_id}}/", methods: [GET], upstream: api, errors: bkflow,
       require: {{ resource: TASK, id: "{{task_id}}", permission: VIEW, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}", template: "{{lookup:template_id}}", create_method: "{{lookup:create_method}}" }},
       lookup: {{ upstream: api, path: "/internal/tasks/{{task_id}}", ttl: 30s }} }}
  - {{ path: "/sdk/task/operate_task/{{task_id}}/{{action}}/", methods: [POST], upstream: api, errors: bkflow,
       require: {{ resource: TASK, id: "{{task_id}}", permission: OPERATE, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}", template: "{{lookup:template_id}}", create_method: "{{lookup:create_method}}" }},
       lookup: {{ upstream: api, path: "/internal/tasks/{{task_id}}", ttl: 30s }} }}
"#,
        up.url()
    )
}

/// Where the test's templates and tasks live (what the lookups answer).
fn meta() -> support::Meta {
    [
        (
            "/internal/templates/1",
            json!({ "space_id": 3, "scope": "project_3" }),
        ),
        (
            "/internal/templates/2",
            json!({ "space_id": 3, "scope": "project_4" }),
        ),
        (
            "/internal/templates/5",
            json!({ "space_id": 3, "scope": "project_4" }),
        ),
        (
            "/internal/tasks/9",
            json!({ "space_id": 3, "scope": "project_3", "template_id": "1", "create_method": "MOCK" }),
        ),
        (
            "/internal/tasks/7",
            json!({ "space_id": 3, "scope": "project_4", "template_id": "1", "create_method": "API" }),
        ),
        (
            "/internal/tasks/8",
            json!({ "space_id": "3", "scope": "project_4", "template_id": 2 }),
        ),
        (
            "/internal/tasks/6",
            json!({ "space_id": 3, "scope": "project_4", "template_id": null }),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn gw() -> (Gateway, Upstream) {
    let up = Upstream::with_meta(meta()).await;
    (
        Gateway::start(&yaml(&up, "{ prefix: /bkflow, ttl: 1h }")).await,
        up,
    )
}

async fn apply(gw: &Gateway, space: u64, body: Value) -> Value {
    let mut b = json!({ "bk_app_code": "xxxx", "bk_app_secret": "xxxx" });
    b.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    let r = gw
        .post(
            &format!("/bkflow/space/{space}/apply_token/"),
            &[],
            &b.to_string(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn token_for(gw: &Gateway, rt: &str, id: &str, perm: &str) -> String {
    let v = apply(
        gw,
        3,
        json!({ "resource_type": rt, "resource_id": id, "permission_type": perm }),
    )
    .await;
    assert_eq!(v["result"], true, "{v}");
    v["data"]["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_seed_request_gets_the_seed_keys_and_a_32_hex_token() {
    let (gw, _up) = gw().await;
    let r = gw
        .post("/bkflow/space/3/apply_token/", &[], SEED_REQUEST)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["result"], true);
    assert_eq!(v["code"], 0);
    assert_eq!(v["message"], "");
    assert!(v["trace_id"].is_string());
    assert_eq!(
        r.header("bkflow-engine-trace-id"),
        v["trace_id"].as_str().unwrap()
    );
    let d = &v["data"];
    assert_eq!(d["space_id"], 3, "space_id is an int");
    assert_eq!(d["resource_id"], "1", "resource_id is a string");
    assert_eq!(d["resource_type"], "TEMPLATE");
    assert_eq!(d["permission_type"], "VIEW");
    assert_eq!(d["user"], "admin");
    let token = d["token"].as_str().unwrap();
    assert!(
        token.len() == 32
            && token
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{token}"
    );
    let t = d["expired_time"].as_str().unwrap();
    assert_eq!(t.len(), 19, "seed format YYYY-MM-DD HH:MM:SS: {t}");
    assert_eq!(&t[10..11], " ");
    assert_eq!(d["expired"], d["expired_time"]);
    // A numeric resource_id is accepted and stringified, as DRF's CharField does.
    let v = apply(
        &gw,
        3,
        json!({ "resource_type": "TEMPLATE", "resource_id": 7, "permission_type": "VIEW" }),
    )
    .await;
    assert_eq!(v["data"]["resource_id"], "7");
}

#[tokio::test]
async fn app_credentials_and_user_follow_the_gateway_rules() {
    let (gw, _up) = gw().await;
    let path = "/bkflow/space/3/apply_token/";
    let fields = r#""resource_type":"TEMPLATE","resource_id":"1","permission_type":"VIEW""#;
    let wrong = gw
        .post(
            path,
            &[],
            &format!(r#"{{"bk_app_code":"xxxx","bk_app_secret":"nope",{fields}}}"#),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        wrong.json(),
        json!({"code":1640001,"code_name":"INVALID_ARGS","message":"Parameters error [reason=\"bk_app_code or bk_app_secret is incorrect\"]","result":false,"data":null})
    );
    assert_eq!(wrong.header("x-bkapi-error-code"), "1640001");
    let none = gw.post(path, &[], &format!("{{{fields}}}")).await;
    assert_eq!(
        none.json()["message"],
        "Parameters error [reason=\"app code cannot be empty\"]"
    );
    let ghost = gw
        .post(
            path,
            &[],
            &format!(r#"{{"bk_app_code":"ghost","bk_app_secret":"x",{fields}}}"#),
        )
        .await;
    assert_eq!(
        ghost.json()["message"],
        "Parameters error [reason=\"app not found\"]"
    );
    let nosecret = gw
        .post(path, &[], &format!(r#"{{"bk_app_code":"xxxx",{fields}}}"#))
        .await;
    assert!(nosecret.json()["message"]
        .as_str()
        .unwrap()
        .contains("please provide bk_app_secret"));

    // The header alone counts when present.
    let header = r#"{"bk_app_code":"xxxx","bk_app_secret":"xxxx","bk_username":"alice"}"#;
    let r = gw
        .post(
            path,
            &[("x-bkapi-authorization", header)],
            &format!(r#"{{"bk_app_code":"xxxx","bk_app_secret":"nope",{fields}}}"#),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["user"], "alice");
    let bad_header = r#"{"bk_app_code":"xxxx","bk_app_secret":"nope"}"#;
    let r = gw
        .post(
            path,
            &[("x-bkapi-authorization", bad_header)],
            &format!(r#"{{"bk_app_code":"xxxx","bk_app_secret":"xxxx",{fields}}}"#),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = gw
        .post(
            path,
            &[("x-bkapi-authorization", "not json")],
            &format!(r#"{{"bk_app_code":"xxxx","bk_app_secret":"xxxx",{fields}}}"#),
        )
        .await;
    assert_eq!(
        r.json()["message"],
        "Parameters error [reason=\"app code cannot be empty\"]"
    );

    // No user and no default user: refused for apply, fine for revoke.
    let body = r#"{"bk_app_code":"nouser","bk_app_secret":"nouser-secret","resource_type":"TASK","resource_id":"1","permission_type":"VIEW"}"#;
    let r = gw.post("/bkflow/space/5/apply_token/", &[], body).await;
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("user authentication failed"));
    let with_user = body.replace(
        "\"resource_type\"",
        "\"bk_username\":\"carol\",\"resource_type\"",
    );
    assert_eq!(
        gw.post("/bkflow/space/5/apply_token/", &[], &with_user)
            .await
            .json()["data"]["user"],
        "carol"
    );
    let r = gw
        .post(
            "/bkflow/space/5/revoke_token/",
            &[],
            r#"{"bk_app_code":"nouser","bk_app_secret":"nouser-secret"}"#,
        )
        .await;
    assert_eq!(r.json()["data"], "1 tokens revoke success");
}

#[tokio::test]
async fn an_app_may_only_use_its_own_space() {
    let (gw, _up) = gw().await;
    let body = r#"{"bk_app_code":"xxxx","bk_app_secret":"xxxx","resource_type":"TEMPLATE","resource_id":"1","permission_type":"VIEW"}"#;
    let r = gw.post("/bkflow/space/4/apply_token/", &[], body).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json(),
        json!({ "result": false, "message": "当前应用无权操作此空间，app=xxxx" })
    );
    let r = gw.post("/bkflow/space/99/apply_token/", &[], body).await;
    assert_eq!(
        r.json(),
        json!({ "result": false, "message": "空间不存在，space_id=99" })
    );
    assert_eq!(
        gw.post("/bkflow/space/3/apply_token", &[], body)
            .await
            .status,
        404,
        "the trailing slash is part of the path"
    );
}

#[tokio::test]
async fn the_same_apply_returns_the_same_token_renewed_and_others_differ() {
    let (gw, _up) = gw().await;
    let fields =
        json!({ "resource_type": "TEMPLATE", "resource_id": "1", "permission_type": "VIEW" });
    let a = apply(&gw, 3, fields.clone()).await;
    gw.advance(std::time::Duration::from_millis(1100));
    let b = apply(&gw, 3, fields.clone()).await;
    assert_eq!(a["data"]["token"], b["data"]["token"]);
    assert!(
        b["data"]["expired_time"].as_str() > a["data"]["expired_time"].as_str(),
        "renewed: {a} {b}"
    );
    for other in [
        json!({ "resource_type": "TEMPLATE", "resource_id": "1", "permission_type": "EDIT" }),
        json!({ "resource_type": "TEMPLATE", "resource_id": "2", "permission_type": "VIEW" }),
        json!({ "resource_type": "TEMPLATE", "resource_id": "1", "permission_type": "VIEW", "bk_username": "bob" }),
    ] {
        assert_ne!(
            apply(&gw, 3, other).await["data"]["token"],
            a["data"]["token"]
        );
    }
}

#[tokio::test]
async fn invalid_fields_answer_code_400_on_http_200_and_grants_cap_the_token() {
    let (gw, _up) = gw().await;
    let v = apply(
        &gw,
        3,
        json!({ "resource_type": "FOO", "permission_type": "VIEW" }),
    )
    .await;
    assert_eq!(v["result"], false);
    assert_eq!(v["code"], 400);
    assert!(v["data"].is_null());
    let msg: Value = serde_json::from_str(v["message"].as_str().unwrap()).unwrap();
    assert_eq!(msg["resource_type"], "\u{201c}FOO\u{201d} 不是合法选项。");
    assert_eq!(msg["resource_id"], "该字段是必填项。");
    assert!(
        v["message"].as_str().unwrap().contains("\\u201cFOO"),
        "ASCII-escaped as Python's json.dumps"
    );
    let v = apply(
        &gw,
        3,
        json!({ "resource_type": "TASK", "resource_id": "1", "permission_type": "EDIT" }),
    )
    .await;
    assert_eq!(v["code"], 400, "EDIT is not a TASK permission");
    let v = apply(
        &gw,
        3,
        json!({ "resource_type": "SCOPE", "resource_id": "project", "permission_type": "VIEW" }),
    )
    .await;
    assert_eq!(v["code"], 500);
    assert_eq!(
        v["message"],
        "创建Token失败: token申请失败，对应的资源不存在"
    );
    let r = gw
        .post(
            "/bkflow/space/3/apply_token/",
            &[(
                "x-bkapi-authorization",
                r#"{"bk_app_code":"xxxx","bk_app_secret":"xxxx"}"#,
            )],
            "not json",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["code"], 500);
    // Beyond the app's grants: refused, never issued.
    let over = r#"{"bk_app_code":"other","bk_app_secret":"other-secret","bk_username":"u","resource_type":"TEMPLATE","resource_id":"1","permission_type":"EDIT"}"#;
    let r = gw.post("/bkflow/space/4/apply_token/", &[], over).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], 1640301);
    assert_eq!(r.json()["code_name"], "APP_NO_PERMISSION");
    let other_id = over
        .replace("\"EDIT\"", "\"VIEW\"")
        .replace("\"resource_id\":\"1\"", "\"resource_id\":\"2\"");
    assert_eq!(
        gw.post("/bkflow/space/4/apply_token/", &[], &other_id)
            .await
            .status,
        403
    );
    let within = over.replace("\"EDIT\"", "\"VIEW\"");
    assert_eq!(
        gw.post("/bkflow/space/4/apply_token/", &[], &within)
            .await
            .json()["result"],
        true
    );
}

async fn call(gw: &Gateway, method: &str, path: &str, token: &str) -> Resp {
    gw.client
        .send(method, &gw.url(path), &[("bkflow-token", token)], "")
        .await
}

#[tokio::test]
async fn the_lattice_holds_on_guarded_routes_row_by_row() {
    let (gw, _up) = gw().await;
    // Template 1 and task 9 (from template 1) live in scope project_3; template 5 and task 8
    // (from template 2) in project_4. Where they live is the lookup's answer, never the client's.
    let five = |tpl: &str, task: &str| {
        [
            ("GET", format!("/sdk/template/{tpl}/")),
            ("POST", format!("/sdk/template/{tpl}/update/")),
            ("POST", format!("/sdk/template/{tpl}/mock/")),
            ("GET", format!("/sdk/task/{task}/")),
            ("POST", format!("/sdk/task/operate_task/{task}/start/")),
        ]
    };
    // (resource_type, resource_id, permission, in project_3?, expected statuses of the five routes)
    type Row<'a> = (&'a str, &'a str, &'a str, bool, [u16; 5]);
    let rows: &[Row<'_>] = &[
        //                                  tpl  upd  mock task op
        ("TEMPLATE", "1", "VIEW", true, [200, 403, 403, 403, 403]),
        ("TEMPLATE", "1", "EDIT", true, [200, 200, 403, 403, 403]),
        ("TEMPLATE", "1", "MOCK", true, [200, 200, 200, 200, 200]),
        ("TEMPLATE", "2", "MOCK", true, [403, 403, 403, 403, 403]),
        ("TASK", "9", "VIEW", true, [403, 403, 403, 200, 403]),
        ("TASK", "9", "OPERATE", true, [403, 403, 403, 200, 200]),
        (
            "SCOPE",
            "project_3",
            "VIEW",
            true,
            [200, 403, 403, 200, 403],
        ),
        (
            "SCOPE",
            "project_3",
            "EDIT",
            true,
            [200, 200, 403, 403, 403],
        ),
        (
            "SCOPE",
            "project_3",
            "OPERATE",
            true,
            [403, 403, 403, 200, 200],
        ),
        (
            "SCOPE",
            "project_3",
            "MOCK",
            true,
            [200, 200, 200, 200, 200],
        ),
        (
            "SCOPE",
            "project_3",
            "MOCK",
            false,
            [403, 403, 403, 403, 403],
        ),
    ];
    for (rt, id, perm, in_p3, want) in rows {
        let token = token_for(&gw, rt, id, perm).await;
        let (tpl, task) = if *in_p3 { ("1", "9") } else { ("5", "8") };
        let mut got = [0u16; 5];
        for (i, (method, path)) in five(tpl, task).iter().enumerate() {
            got[i] = call(&gw, method, path, &token).await.status.as_u16();
        }
        assert_eq!(&got, want, "{rt} {id} {perm} in project_3: {in_p3}");
    }
    // TEMPLATE MOCK reaches a task only through the template the task was made from, and only
    // a task a mock run created: task 7 comes from template 1 but was created by the API.
    let mock_token = token_for(&gw, "TEMPLATE", "1", "MOCK").await;
    for task in ["8", "6", "7"] {
        assert_eq!(
            call(&gw, "GET", &format!("/sdk/task/{task}/"), &mock_token)
                .await
                .status,
            403,
            "task {task}"
        );
    }
    let tpl = "/sdk/template/1/";
    let upd = "/sdk/template/1/update/";
    // Refusals use the bkflow body and keep the RFC 6750 header; an OK carries identity headers.
    let view = token_for(&gw, "TEMPLATE", "1", "VIEW").await;
    let denied = call(&gw, "POST", upd, &view).await;
    let v = denied.json();
    assert_eq!(
        (v["result"].clone(), v["code"].clone(), v["data"].clone()),
        (json!(false), json!(403), Value::Null)
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("TEMPLATE EDIT on 1"),
        "{v}"
    );
    assert!(denied
        .header("www-authenticate")
        .contains("insufficient_scope"));
    let ok = call(&gw, "GET", tpl, &view).await.json();
    assert_eq!(ok["headers"]["x-tollgate-space"], "3");
    assert_eq!(ok["headers"]["x-tollgate-user"], "admin");
    assert_eq!(ok["headers"]["x-tollgate-dialect"], "bkflow");
    assert!(
        ok["headers"].get("bkflow-token").is_none(),
        "the token is not forwarded"
    );
    let bearer = gw
        .get(tpl, &[("authorization", &format!("Bearer {view}"))])
        .await;
    assert_eq!(bearer.status, 200, "Authorization: Bearer works too");
    let missing = gw.get(tpl, &[]).await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.json()["code"], 401);
    assert_eq!(
        call(&gw, "GET", tpl, "0123456789abcdef0123456789abcdef")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn revoke_matches_fields_counts_valid_tokens_and_takes_effect_at_once() {
    let (gw, _up) = gw().await;
    let a = token_for(&gw, "TEMPLATE", "1", "VIEW").await;
    let b = token_for(&gw, "TEMPLATE", "2", "VIEW").await;
    assert_eq!(
        call(&gw, "GET", "/sdk/template/1/", &a).await.status,
        200,
        "a is hot now"
    );
    let creds = r#""bk_app_code":"xxxx","bk_app_secret":"xxxx""#;
    let r = gw
        .post(
            "/bkflow/space/3/revoke_token/",
            &[],
            &format!(r#"{{{creds},"resource_id":"1"}}"#),
        )
        .await
        .json();
    assert_eq!(
        r,
        json!({ "result": true, "data": "1 tokens revoke success", "message": "", "code": 0, "trace_id": r["trace_id"] })
    );
    let gone = call(&gw, "GET", "/sdk/template/1/", &a).await;
    assert_eq!(gone.status, 401, "revoked at once, even though it was hot");
    assert_eq!(call(&gw, "GET", "/sdk/template/2/", &b).await.status, 200);
    let r = gw
        .post(
            "/bkflow/space/3/revoke_token/",
            &[],
            &format!(r#"{{{creds},"token":"{b}"}}"#),
        )
        .await
        .json();
    assert_eq!(r["data"], "1 tokens revoke success");
    let r = gw
        .post(
            "/bkflow/space/3/revoke_token/",
            &[],
            &format!("{{{creds}}}"),
        )
        .await
        .json();
    assert_eq!(
        r["data"], "0 tokens revoke success",
        "only still-valid tokens count"
    );
    token_for(&gw, "TASK", "1", "VIEW").await;
    token_for(&gw, "TASK", "2", "VIEW").await;
    let r = gw
        .post(
            "/bkflow/space/3/revoke_token/",
            &[],
            &format!("{{{creds}}}"),
        )
        .await
        .json();
    assert_eq!(
        r["data"], "2 tokens revoke success",
        "{{}} revokes the whole space"
    );
    let bad = gw
        .post(
            "/bkflow/space/3/revoke_token/",
            &[],
            &format!(r#"{{{creds},"resource_type":"NOPE"}}"#),
        )
        .await
        .json();
    assert_eq!(bad["code"], 400);
    let fresh = token_for(&gw, "TEMPLATE", "1", "VIEW").await;
    assert_ne!(fresh, a, "after a revoke a new token is issued");
}

#[tokio::test]
async fn iso8601_times_when_configured() {
    let up = Upstream::echo().await;
    let gw = Gateway::start(&yaml(
        &up,
        "{ prefix: /flow, ttl: 2h, time_format: iso8601 }",
    ))
    .await;
    let body = r#"{"bk_app_code":"xxxx","bk_app_secret":"xxxx","resource_type":"TEMPLATE","resource_id":"1","permission_type":"VIEW"}"#;
    let v = gw
        .post("/flow/space/3/apply_token/", &[], body)
        .await
        .json();
    let t = v["data"]["expired_time"].as_str().unwrap();
    assert!(t.ends_with('Z') && t.contains('T'), "{t}");
}
