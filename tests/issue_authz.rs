//! Authorization a client cannot argue with, and that follows the config: one test per hole
//! a security review found, each over real sockets against a real gateway and upstream.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::{Gateway, Resp, TestClient, Upstream};

/// The apps, dialects and routes of these tests; `coupang` is what each test shrinks.
struct Setup {
    coupang_secret: &'static str,
    oauth_scopes: &'static str,
    level: &'static str,
    star_grant: bool,
    with_coupang: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            coupang_secret: "coupangTest",
            oauth_scopes: "[bailunApi, reports]",
            level: "platform",
            star_grant: true,
            with_coupang: true,
        }
    }
}

impl Setup {
    fn yaml(&self, up: &Upstream) -> String {
        let star = if self.star_grant {
            r#"{ resource: TEMPLATE, id: "*", permission: EDIT },"#
        } else {
            ""
        };
        let coupang = if self.with_coupang {
            format!(
                r#"  - id: coupang
    secret: {}
    oauth_scopes: {}
    scope: {}
    space_id: 3
    user: admin
    grants: [ {star} {{ resource: TEMPLATE, id: mine, permission: MOCK }}, {{ resource: SCOPE, id: project_3, permission: OPERATE }} ]
"#,
                self.coupang_secret, self.oauth_scopes, self.level
            )
        } else {
            String::new()
        };
        format!(
            r#"apps:
{coupang}  - {{ id: other, secret: otherSecret, space_id: 4, user: bob, oauth_scopes: [bailunApi], grants: [ {{ resource: TEMPLATE, id: "*", permission: VIEW }} ] }}
signing: {{ issuer: https://gw.test }}
dialects:
  oauth: {{}}
  hosecloud: {{ ttl: 2h, refresh_ttl: 30d }}
  feishu: {{}}
  bkflow: {{}}
upstreams:
  api: {{ targets: ["{url}"] }}
routes:
  - {{ path: /any, upstream: api }}
  - {{ path: /reports, upstream: api, require: {{ oauth_scope: reports }} }}
  - {{ path: /platform, upstream: api, require: {{ level: platform }} }}
  - {{ path: /by_query, upstream: api, errors: bkflow, require: {{ resource: TEMPLATE, id: "{{query:template_id}}", permission: EDIT, space: "3" }} }}
  - {{ path: /by_header, upstream: api, errors: bkflow, require: {{ resource: TEMPLATE, id: "{{header:X-Template}}", permission: EDIT, space: "3" }} }}
  - {{ path: "/sdk/template/{{template_id}}/", upstream: api, errors: bkflow,
       require: {{ resource: TEMPLATE, id: "{{template_id}}", permission: EDIT, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}" }},
       lookup: {{ upstream: api, path: "/internal/templates/{{template_id}}", ttl: 30s }} }}
  - {{ path: "/sdk/task/operate_task/{{task_id}}/{{action}}/", methods: [POST], upstream: api, errors: bkflow,
       require: {{ resource: TASK, id: "{{task_id}}", permission: OPERATE, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}", template: "{{lookup:template_id}}" }},
       lookup: {{ upstream: api, path: "/internal/tasks/{{task_id}}", ttl: 30s }} }}
  - {{ path: "/cred/task/{{task_id}}", upstream: api, errors: bkflow, upstream_credential: {{ space: 3, name: lookup-cred }},
       require: {{ resource: TASK, id: "{{task_id}}", permission: OPERATE, space: "{{lookup:space_id}}", scope: "{{lookup:scope}}" }},
       lookup: {{ upstream: api, path: "/internal/tasks/{{task_id}}", ttl: 30s }} }}
"#,
            url = up.url()
        )
    }
}

fn meta() -> support::Meta {
    [
        (
            "/internal/tasks/424242",
            json!({ "space_id": 3, "scope": "project_4", "template_id": "victim" }),
        ),
        (
            "/internal/tasks/777",
            json!({ "space_id": 3, "scope": "project_3", "template_id": null }),
        ),
        ("/internal/tasks/500", json!("fail")),
        (
            "/internal/templates/space4_template_55",
            json!({ "space_id": 4, "scope": "project_9" }),
        ),
        (
            "/internal/templates/mine",
            json!({ "space_id": 3, "scope": "project_3" }),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

async fn start() -> (Gateway, Upstream) {
    let up = Upstream::with_meta(meta()).await;
    let gw = Gateway::start(&Setup::default().yaml(&up)).await;
    (gw, up)
}

async fn post_json(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    gw.post(path, headers, &body.to_string()).await
}

/// A bkflow token of `app` for (type, id, perm), or the whole refusal.
async fn bk_apply(
    gw: &Gateway,
    app: (&str, &str),
    space: u64,
    rt: &str,
    id: &str,
    perm: &str,
) -> Value {
    let body = json!({ "bk_app_code": app.0, "bk_app_secret": app.1,
        "resource_type": rt, "resource_id": id, "permission_type": perm });
    post_json(
        gw,
        &format!("/bkflow/space/{space}/apply_token/"),
        &[],
        &body,
    )
    .await
    .json()
}

async fn bk_token(gw: &Gateway, rt: &str, id: &str, perm: &str) -> String {
    let v = bk_apply(gw, ("coupang", "coupangTest"), 3, rt, id, perm).await;
    assert_eq!(v["result"], true, "{v}");
    v["data"]["token"].as_str().unwrap().to_owned()
}

async fn oauth_token(gw: &Gateway, app: &str, secret: &str) -> String {
    let r = post_json(
        gw,
        "/oauth/token/get",
        &[],
        &json!({ "app_id": app, "app_secret": secret }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["accessToken"].as_str().unwrap().to_owned()
}

async fn hosecloud_pair(gw: &Gateway) -> (String, String) {
    let r = post_json(
        gw,
        "/auth/openApi/v3/getAccessToken",
        &[],
        &json!({ "appKey": "coupang", "appSecurity": "coupangTest" }),
    )
    .await
    .json();
    assert_eq!(r["code"], "200", "{r}");
    (
        r["data"]["accessToken"].as_str().unwrap().to_owned(),
        r["data"]["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn feishu_app_token(gw: &Gateway) -> String {
    let admin = gw.admin_url("");
    support::feishu_app_token(&gw.client, &gw.url(""), &admin, "coupang", "coupangTest").await
}

async fn with_bearer(gw: &Gateway, method: &str, path: &str, token: &str) -> Resp {
    let t = token.strip_prefix("Bearer ").unwrap_or(token);
    gw.client
        .send(
            method,
            &gw.url(path),
            &[("authorization", &format!("Bearer {t}"))],
            "",
        )
        .await
}

fn check(dir: &std::path::Path, yaml: &str) -> (i32, String) {
    let p = support::bin::write(dir, "check.yaml", yaml);
    let out = std::process::Command::new(support::bin::exe())
        .args(["check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// 1. Where a resource lives is the lookup's answer: a header or query value changes nothing.
#[tokio::test]
async fn the_client_cannot_state_where_a_resource_lives() {
    let (gw, up) = start().await;
    let scope_op = bk_token(&gw, "SCOPE", "project_3", "OPERATE").await;
    let mock_mine = bk_token(&gw, "TEMPLATE", "mine", "MOCK").await;
    let op = |task: &str, extra: &str| format!("/sdk/task/operate_task/{task}/revoke/{extra}");
    for (token, extra, hdr) in [
        (&scope_op, "", None),
        (&scope_op, "", Some(("x-scope", "project_3"))),
        (&scope_op, "?scope=project_3", None),
        (&mock_mine, "?template_id=mine", None),
        (&mock_mine, "", Some(("x-template", "mine"))),
    ] {
        let mut h = vec![("bkflow-token", token.as_str())];
        h.extend(hdr);
        let r = gw
            .client
            .send("POST", &gw.url(&op("424242", extra)), &h, "")
            .await;
        assert_eq!(
            r.status, 403,
            "task 424242 lives in project_4: {extra} {hdr:?}"
        );
    }
    // Where the lookup puts the task in project_3, the SCOPE token passes; the answer is cached.
    let before = up.lookup_count();
    for _ in 0..3 {
        let ok = gw
            .client
            .send(
                "POST",
                &gw.url(&op("777", "")),
                &[("bkflow-token", &scope_op)],
                "",
            )
            .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    assert_eq!(
        up.lookup_count() - before,
        1,
        "one lookup for three requests"
    );
    // An unknown resource is 403; a lookup that fails is 503 (fail closed).
    let unknown = gw
        .client
        .send(
            "POST",
            &gw.url(&op("99", "")),
            &[("bkflow-token", &scope_op)],
            "",
        )
        .await;
    assert_eq!(unknown.status, 403, "{}", unknown.body);
    let failed = gw
        .client
        .send(
            "POST",
            &gw.url(&op("500", "")),
            &[("bkflow-token", &scope_op)],
            "",
        )
        .await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert_eq!(failed.header("retry-after"), "1");
    // The route's upstream credential goes with its lookup, as with the request itself.
    let created = post_json(
        &gw,
        "/bkflow/space/3/create_credential/",
        &[],
        &json!({ "bk_app_code": "coupang", "bk_app_secret": "coupangTest", "name": "lookup-cred",
                 "type": "BK_APP", "content": { "bk_app_code": "svc", "bk_app_secret": "svc-secret" } }),
    )
    .await;
    assert_eq!(created.json()["result"], true, "{}", created.body);
    let ok = gw
        .client
        .send(
            "GET",
            &gw.url("/cred/task/777"),
            &[("bkflow-token", &scope_op)],
            "",
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let (path, headers) = up.lookups.lock().unwrap().last().cloned().unwrap();
    assert_eq!(path, "/internal/tasks/777");
    let sent: Value = serde_json::from_slice(headers["x-bkapi-authorization"].as_bytes()).unwrap();
    assert_eq!(
        sent,
        json!({ "bk_app_code": "svc", "bk_app_secret": "svc-secret" })
    );
    // `check` refuses a client-controlled source for a fact — a header, a query key or the
    // path itself — naming file, line and key.
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in [
        ("scope", "{header:X-Scope}"),
        ("template", "{query:template_id}"),
        ("space", "{header:X-Space}"),
        ("scope", "{scope}"),
        ("space", "{id}"),
        ("template", "{id}"),
        ("create_method", "{query:m}"),
        ("create_method", "{id}"),
    ] {
        let space = if key == "space" { "" } else { "space: \"3\", " };
        let yaml = format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nupstreams:\n  api: {{ targets: [\"http://127.0.0.1:1\"] }}\nroutes:\n  - path: \"/t/{{scope}}/{{id}}\"\n    upstream: api\n    require: {{ resource: TASK, id: \"{{id}}\", permission: VIEW, {space}{key}: \"{value}\" }}\n"
        );
        let (code, err) = check(dir.path(), &yaml);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!(
                "check.yaml:7: routes[0].require.{key}: {key} is a fact about the resource"
            )),
            "{key}: {value}: {err}"
        );
    }
    // Every resource requirement names its space; a catch-all is neither an id nor a lookup
    // path parameter.
    let base = "listen: { address: \"127.0.0.1:0\" }\nupstreams:\n  api: { targets: [\"http://127.0.0.1:1\"] }\nroutes:\n";
    for (route, want) in [
        (
            "  - path: \"/t/{id}\"\n    upstream: api\n    require: { resource: TASK, id: \"{id}\", permission: VIEW }\n",
            "check.yaml:7: routes[0].require.space: every resource requirement names its space",
        ),
        (
            "  - path: \"/t/*rest\"\n    upstream: api\n    require: { resource: TASK, id: \"{rest}\", permission: VIEW, space: \"3\" }\n",
            "check.yaml:7: routes[0].require.id: {rest} is a catch-all",
        ),
        (
            "  - path: \"/t/*rest\"\n    upstream: api\n    require: { resource: TASK, id: \"x\", permission: VIEW, space: \"{lookup:s}\" }\n    lookup: { upstream: api, path: \"/meta/{rest}\" }\n",
            "check.yaml:8: routes[0].lookup.path: {rest} is a catch-all",
        ),
        (
            "  - path: \"/t/{id}\"\n    upstream: api\n    require: { resource: TASK, id: \"{query:task}\", permission: VIEW, space: \"{lookup:s}\" }\n    lookup: { upstream: api, path: \"/meta/{id}\" }\n",
            "routes[0].require.id: facts from a lookup need an id that is a {path_param} the lookup's path carries",
        ),
    ] {
        let (code, err) = check(dir.path(), &format!("{base}{route}"));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(want), "{want}\n{err}");
    }
}

/// 2. A referenced query key or header sent twice is refused: first checked, last used is gone.
#[tokio::test]
async fn a_referenced_parameter_sent_twice_is_refused() {
    let (gw, _up) = start().await;
    let mine = bk_token(&gw, "TEMPLATE", "mine", "MOCK").await;
    let h = [("bkflow-token", mine.as_str())];
    let get = |path: &'static str, extra: Vec<(&'static str, &'static str)>| {
        let mut headers: Vec<(&str, &str)> = h.to_vec();
        headers.extend(extra);
        let client = gw.client.clone();
        let url = gw.url(path);
        async move { client.send("GET", &url, &headers, "").await }
    };
    let ok = get("/by_query?template_id=mine", vec![]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    for path in [
        "/by_query?template_id=mine&template_id=victim",
        "/by_query?template_id=mine&template%5Fid=victim",
        "/by_query?template_id=victim&template_id=mine",
        // PHP reads these as template_id too; Rails and others compare keys in any case.
        "/by_query?template_id=mine&template.id=victim",
        "/by_query?template_id=mine&template%20id=victim",
        "/by_query?template_id=mine&template[id=victim",
        "/by_query?template_id=mine&Template_Id=victim",
        // Arrays to PHP and Express; `;` separates pairs for old Go and Rack.
        "/by_query?template_id=mine&template_id[]=victim",
        "/by_query?template_id=mine&template_id[a]=victim",
        "/by_query?x=1;template_id=victim&template_id=mine",
    ] {
        let r = get(path, vec![]).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains("more than once"), "{}", r.body);
    }
    let one = get("/by_header", vec![("x-template", "mine")]).await;
    assert_eq!(one.status, 200, "{}", one.body);
    let two = get(
        "/by_header",
        vec![("x-template", "mine"), ("x-template", "victim")],
    )
    .await;
    assert_eq!(two.status, 400, "{}", two.body);
    // A `_` spelling is the same header to CGI, WSGI, PHP and Rack.
    let folded = get(
        "/by_header",
        vec![("x-template", "mine"), ("x_template", "victim")],
    )
    .await;
    assert_eq!(folded.status, 400, "{}", folded.body);
}

/// 3. A "*" grant means any id in the app's own space, once the route says where the resource is.
#[tokio::test]
async fn a_star_grant_does_not_reach_another_space() {
    let (gw, _up) = start().await;
    let foreign = bk_token(&gw, "TEMPLATE", "space4_template_55", "EDIT").await;
    let r = gw
        .client
        .send(
            "GET",
            &gw.url("/sdk/template/space4_template_55/"),
            &[("bkflow-token", &foreign)],
            "",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    // The refusal names the missing requirement, never the space the lookup said.
    assert!(r.body.contains("not in the token's space"), "{}", r.body);
    assert!(
        !r.body.contains("space 4") && !r.body.contains("project_9"),
        "{}",
        r.body
    );
    let own = bk_token(&gw, "TEMPLATE", "mine", "EDIT").await;
    let r = gw
        .client
        .send(
            "GET",
            &gw.url("/sdk/template/mine/"),
            &[("bkflow-token", &own)],
            "",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// 4. A reload reaches tokens already issued, hot or never seen, in every dialect.
#[tokio::test]
async fn config_changes_reach_issued_tokens() {
    let (gw, up) = start().await;
    let oauth_hot = oauth_token(&gw, "coupang", "coupangTest").await;
    let oauth_cold = oauth_token(&gw, "coupang", "coupangTest").await;
    let (hose, refresh) = hosecloud_pair(&gw).await;
    let bk_star = bk_token(&gw, "TEMPLATE", "other1", "EDIT").await;
    let feishu = feishu_app_token(&gw).await;
    assert_eq!(
        with_bearer(&gw, "GET", "/reports", &oauth_hot).await.status,
        200
    );
    assert_eq!(
        with_bearer(&gw, "GET", "/platform", &hose).await.status,
        200
    );
    let by_query = "/by_query?template_id=other1";
    assert_eq!(
        with_bearer(&gw, "GET", by_query, &bk_star).await.status,
        200
    );
    for t in [&oauth_hot, &hose, &bk_star, &feishu] {
        assert_eq!(with_bearer(&gw, "GET", "/any", t).await.status, 200);
    }

    // Scopes, level and grants shrink: the same (hot) tokens are held to the new config.
    gw.reload(
        &Setup {
            oauth_scopes: "[bailunApi]",
            level: "tenant",
            star_grant: false,
            ..Setup::default()
        }
        .yaml(&up),
    );
    assert_eq!(
        with_bearer(&gw, "GET", "/reports", &oauth_hot).await.status,
        403
    );
    let seen = with_bearer(&gw, "GET", "/any", &oauth_hot).await.json();
    assert_eq!(
        seen["headers"]["x-tollgate-scope"], "bailunApi",
        "the upstream sees what holds now"
    );
    assert_eq!(
        with_bearer(&gw, "GET", "/platform", &hose).await.status,
        403
    );
    assert_eq!(
        with_bearer(&gw, "GET", by_query, &bk_star).await.status,
        403
    );

    // A changed secret ends the refresh chain.
    gw.reload(
        &Setup {
            coupang_secret: "rotated-secret",
            ..Setup::default()
        }
        .yaml(&up),
    );
    let r = post_json(
        &gw,
        "/auth/openApi/v3/refreshToken",
        &[],
        &json!({ "accessToken": hose, "refreshToken": refresh }),
    )
    .await
    .json();
    assert_eq!(r["code"], "403", "{r}");

    // The app is removed: every token of it is invalid, including a JWT never seen before.
    gw.reload(
        &Setup {
            with_coupang: false,
            ..Setup::default()
        }
        .yaml(&up),
    );
    for (name, t) in [
        ("oauth (hot)", &oauth_hot),
        ("oauth (never used)", &oauth_cold),
        ("hosecloud", &hose),
        ("bkflow", &bk_star),
        ("feishu", &feishu),
    ] {
        let r = with_bearer(&gw, "GET", "/any", t).await;
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert!(r.body.contains("withdrawn"), "{name}: {}", r.body);
    }
    let other = oauth_token(&gw, "other", "otherSecret").await;
    assert_eq!(
        with_bearer(&gw, "GET", "/any", &other).await.status,
        200,
        "other apps unaffected"
    );
}

/// 4 (cont.). A refresh chain has an absolute lifetime, however often it is refreshed.
#[tokio::test]
async fn a_refresh_chain_ends_after_its_max_lifetime() {
    let up = Upstream::echo().await;
    let yaml = format!(
        "apps:\n  - {{ id: hc, secret: hcSecret }}\ndialects:\n  hosecloud: {{ ttl: 1s, refresh_ttl: 2s, refresh_max_lifetime: 2s }}\nupstreams:\n  api: {{ targets: [\"{}\"] }}\n",
        up.url()
    );
    let gw = Gateway::start(&yaml).await;
    let r = post_json(
        &gw,
        "/auth/openApi/v3/getAccessToken",
        &[],
        &json!({ "appKey": "hc", "appSecurity": "hcSecret" }),
    )
    .await
    .json();
    let mut pair = (
        r["data"]["accessToken"].clone(),
        r["data"]["refreshToken"].clone(),
    );
    let refresh = |pair: &(Value, Value)| {
        let body = json!({ "accessToken": pair.0, "refreshToken": pair.1 });
        let gw = &gw;
        async move {
            post_json(gw, "/auth/openApi/v3/refreshToken", &[], &body)
                .await
                .json()
        }
    };
    gw.advance(Duration::from_millis(700));
    let next = refresh(&pair).await;
    assert_eq!(next["code"], "200", "within the chain's life: {next}");
    pair = (
        next["data"]["accessToken"].clone(),
        next["data"]["refreshToken"].clone(),
    );
    gw.advance(Duration::from_millis(1400));
    let over = refresh(&pair).await;
    assert_eq!(
        over["code"], "403",
        "2s after the login the chain is over: {over}"
    );
}

/// 5. Ids are plain tokens: nothing that could be read as more identity reaches a header.
#[tokio::test]
async fn ids_cannot_inject_identity() {
    let (gw, _up) = start().await;
    for bad in ["1:TEMPLATE:x:MOCK", "*", "a b", "x,y"] {
        let v = bk_apply(&gw, ("coupang", "coupangTest"), 3, "TEMPLATE", bad, "EDIT").await;
        assert_eq!(v["result"], false, "{bad:?}: {v}");
        assert_eq!(v["code"], 400, "{bad:?}: {v}");
    }
    let good = bk_token(&gw, "TEMPLATE", "mine", "EDIT").await;
    let seen = gw
        .client
        .send(
            "GET",
            &gw.url("/by_query?template_id=mine"),
            &[("bkflow-token", &good)],
            "",
        )
        .await
        .json();
    assert_eq!(seen["headers"]["x-tollgate-scope"], "TEMPLATE:mine:EDIT");
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(
        dir.path(),
        "listen: { address: \"127.0.0.1:0\" }\napps:\n  - id: a\n    secret: s\n    grants:\n      - { resource: TEMPLATE, id: \"1:TEMPLATE:x\", permission: VIEW }\n",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("check.yaml:6: apps[0].grants[0].id"), "{err}");
}

/// 6. One credential per request, and none of its carriers reaches the upstream.
#[tokio::test]
async fn a_second_credential_is_refused_and_none_is_forwarded() {
    let (gw, _up) = start().await;
    let jwt = oauth_token(&gw, "coupang", "coupangTest").await;
    let raw = jwt.strip_prefix("Bearer ").unwrap().to_owned();
    let theirs = bk_apply(&gw, ("other", "otherSecret"), 4, "TEMPLATE", "t1", "VIEW").await;
    let theirs = theirs["data"]["token"].as_str().unwrap();
    let two = gw
        .client
        .send(
            "GET",
            &gw.url("/any"),
            &[("authorization", &jwt), ("bkflow-token", theirs)],
            "",
        )
        .await;
    assert_eq!(two.status, 400, "{}", two.body);
    let decoy = gw
        .get(&format!("/any?access%54oken={raw}&accessToken=junk"), &[])
        .await;
    assert_eq!(decoy.status, 400, "{}", decoy.body);
    let encoded = gw.get(&format!("/any?a=1&access%54oken={raw}"), &[]).await;
    assert_eq!(encoded.status, 200, "{}", encoded.body);
    assert_eq!(
        encoded.json()["path"],
        "/any?a=1",
        "the encoded key is stripped too"
    );
    let same = gw
        .client
        .send(
            "GET",
            &gw.url("/any"),
            &[("authorization", &jwt), ("bkflow-token", &raw)],
            "",
        )
        .await;
    assert_eq!(same.status, 200, "the same token twice is one credential");
    let h = &same.json()["headers"];
    assert!(
        h.get("authorization").is_none() && h.get("bkflow-token").is_none(),
        "{h}"
    );
}

/// 7. Tenant tokens say which tenant they are for; tenant keys are bounded.
#[tokio::test]
async fn feishu_tenant_tokens_name_their_tenant() {
    let (gw, _up) = start().await;
    let app = feishu_app_token(&gw).await;
    let tenant = |key: String| {
        let body = json!({ "app_access_token": app, "tenant_key": key });
        let gw = &gw;
        async move {
            post_json(gw, "/open-apis/auth/v3/tenant_access_token", &[], &body)
                .await
                .json()
        }
    };
    for bad in ["k".repeat(65), "a:b".into(), "x".repeat(2048)] {
        assert_eq!(tenant(bad).await["code"], 10003);
    }
    let t = tenant("tenant_1".into()).await;
    assert_eq!(t["code"], 0, "{t}");
    let seen = with_bearer(
        &gw,
        "GET",
        "/any",
        t["tenant_access_token"].as_str().unwrap(),
    )
    .await
    .json();
    assert_eq!(seen["headers"]["x-tollgate-tenant"], "tenant_1");
    let plain = with_bearer(&gw, "GET", "/any", &app).await.json();
    assert!(
        plain["headers"].get("x-tollgate-tenant").is_none(),
        "{plain}"
    );
}

/// 8. The admin API answers only its own address, wants JSON for changes, and never panics.
#[tokio::test]
async fn the_admin_api_resists_rebinding_and_odd_paths() {
    let (gw, _up) = start().await;
    let admin = TestClient::plain();
    let ticket = gw.admin_url("/admin/apps/coupang/app_ticket");
    let rebound = admin
        .send("GET", &ticket, &[("host", "evil.example:80")], "")
        .await;
    assert_eq!(rebound.status, 421, "{}", rebound.body);
    assert!(!rebound.body.contains("app_ticket\""), "{}", rebound.body);
    assert_eq!(admin.send("GET", &ticket, &[], "").await.status, 200);
    let put = admin
        .send(
            "PUT",
            &gw.admin_url("/admin/spaces/3/credentials/1"),
            &[("content-type", "text/plain")],
            r#"{"name":"x","type":"BK_APP","content":{"bk_app_code":"a","bk_app_secret":"b"}}"#,
        )
        .await;
    assert_eq!(put.status, 415, "{}", put.body);
    let revoke = admin
        .send(
            "POST",
            &gw.admin_url("/admin/tokens/revoke"),
            &[("content-type", "text/plain")],
            r#"{"token":"x"}"#,
        )
        .await;
    assert_eq!(revoke.status, 415);
    let form = admin
        .send(
            "POST",
            &gw.admin_url("/admin/tokens/revoke"),
            &[("content-type", "application/x-www-form-urlencoded")],
            "token=abc",
        )
        .await;
    assert_eq!(form.json()["revoked"], false, "RFC 7009 form body");
    // Short, odd and deep paths: every one answered below 500, the listener still up.
    let mut paths: Vec<String> = [
        "/admin/apps/app_ticket",
        "/admin/apps//app_ticket",
        "/admin/apps/app_ticke",
        "/admin/spaces/",
        "/admin/spaces/x/credentials/",
        "/admin/spaces/1/credentials/99999999999999999999999",
        "/admin/",
        "/admin",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let alphabet = [
        "a",
        "/",
        "app_ticket",
        "apps",
        "spaces",
        "credentials",
        "1",
        "%2F",
        "..",
        "",
    ];
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..200 {
        let mut p = String::from("/admin/");
        for _ in 0..(seed % 6) {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            p.push_str(alphabet[(seed >> 16) as usize % alphabet.len()]);
        }
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        paths.push(p);
    }
    for p in &paths {
        for m in ["GET", "PUT", "DELETE"] {
            let r = admin
                .send(
                    m,
                    &gw.admin_url(p),
                    &[("content-type", "application/json")],
                    "{}",
                )
                .await;
            assert!(r.status.as_u16() < 500, "{m} {p}: {} {}", r.status, r.body);
        }
    }
    assert_eq!(
        admin
            .send("GET", &gw.admin_url("/healthz"), &[], "")
            .await
            .status,
        200
    );
}

/// 9. One owner per space; the store is private; the generated master key is spoken of.
#[tokio::test]
async fn spaces_have_one_owner_and_the_store_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = check(
        dir.path(),
        "listen: { address: \"127.0.0.1:0\" }\napps:\n  - { id: a, secret: s, space_id: 3 }\n  - { id: b, secret: t, space_id: 3 }\n",
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("check.yaml:4: apps[1].space_id: space 3 is already owned by apps[0]"),
        "{err}"
    );
    let (code, err) = check(dir.path(), "listen: { address: \"127.0.0.1:0\" }\n");
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("sits beside the store"),
        "check warns about the master key: {err}"
    );

    // The real binary: files 0600 and one line about the generated key at start.
    use std::os::unix::fs::PermissionsExt as _;
    let cfg = support::bin::write(
        dir.path(),
        "run.yaml",
        &format!(
            "listen: {{ address: \"127.0.0.1:0\" }}\nstore: {{ path: {}/data/tollgate.db }}\n",
            dir.path().display()
        ),
    );
    let proc = support::bin::Proc::start(&cfg);
    let said: Vec<&String> = proc
        .early
        .iter()
        .filter(|l| l.contains("master key generated beside the store"))
        .collect();
    assert_eq!(said.len(), 1, "said once at start: {:?}", proc.early);
    assert!(
        said[0].contains("master.key") && said[0].contains("TOLLGATE_MASTER_KEY"),
        "{}",
        said[0]
    );
    let data = dir.path().join("data");
    for name in [
        "tollgate.db",
        "tollgate.db-wal",
        "tollgate.db-shm",
        "master.key",
    ] {
        let p = data.join(name);
        if let Ok(m) = std::fs::metadata(&p) {
            assert_eq!(m.permissions().mode() & 0o777, 0o600, "{name}");
        } else {
            assert!(
                name.ends_with("-wal") || name.ends_with("-shm"),
                "{name} exists"
            );
        }
    }
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory is private");
    drop(proc);
}
