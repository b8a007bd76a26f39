"""proto/openapi.yaml against the running api: every documented operation is called with real ids
and must answer only statuses the document lists, with bodies that match the documented schemas;
every status it lists must be reachable; and the route table, query parameters and headers read by
services/api must all be documented. The document is the contract clients generate code from, so
any drift either way fails here."""
import copy
import datetime
import json
import os
import re
import shutil
import subprocess
import uuid

import harness

ROOT = harness.ROOT
SPEC_PATH = os.path.join(ROOT, "proto", "openapi.yaml")
API_DIR = os.path.join(ROOT, "services", "api")
HTTP_C = os.path.join(ROOT, "common", "http.c")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Statuses no black-box request can provoke on a healthy stack; documented, not required to be seen.
UNREACHABLE = {"500"}
# Statuses any authenticated operation gives over the account's rate limit (documented on each;
# test_api.test_rate_limit provokes them): not required per operation here.
RATE_LIMITED = {"429"}
BIG = b'{"agent_id": "' + b"x" * (1024 * 1024 + 10) + b'"}'
MISSING = "0b5f3a52-7c1e-4a8e-9d62-1f0c2b3a4d5e"  # a UUID no one owns
MISSING_BATCH = "0" * 32  # a batch id no one owns
# Routes authorised by a signature in their URL, or else by the owner's Bearer key
# (security: [{}, bearerAuth]).
SIGNED_ROUTES = {("GET", "/recordings/{}.wav")}

AGENT = {"agent_config": {
    "agent_name": "A", "agent_welcome_message": "Hi",
    "tasks": [{"task_type": "conversation",
               "tools_config": {
                   "llm_agent": {"agent_type": "simple_llm_agent", "agent_flow_type": "streaming",
                                 "llm_config": {"provider": "scripted", "model": "x"}},
                   "synthesizer": {"provider": "local", "provider_config": {"voice": "kal16"}},
                   "transcriber": {"provider": "local"},
                   "input": {"provider": "twilio", "format": "wav"},
                   "output": {"provider": "twilio", "format": "wav"}},
               "toolchain": {"execution": "parallel",
                             "pipelines": [["transcriber", "llm", "synthesizer"]]},
               "task_config": {"hangup_after_silence": 10}}]},
    "agent_prompts": {"task_1": {"system_prompt": "be nice"}}}


# ---------------------------------------------------------------- loading the document

def load_yaml(path):
    """YAML to Python. Prefers the pinned `yaml` npm package (YAML 1.2, the parser redocly uses);
    falls back to PyYAML when present. No pip dependency is needed."""
    node = shutil.which("node")
    ymod = os.path.join(ROOT, ".tools", "node_modules", "yaml")
    if node and os.path.isdir(ymod):
        js = ("const Y = require(process.argv[1]), fs = require('fs');"
              "const doc = Y.parse(fs.readFileSync(process.argv[2], 'utf8'));"
              "process.stdout.write(JSON.stringify(doc));")
        r = subprocess.run([node, "-e", js, ymod, path], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        assert r.returncode == 0, f"cannot parse {path}: {r.stderr}"
        return json.loads(r.stdout)
    try:
        import yaml
    except ImportError:
        raise AssertionError("no YAML parser: run `bash deploy/local/install.sh` (installs "
                             ".tools/node_modules/yaml)")
    with open(path) as f:
        return json.loads(json.dumps(yaml.safe_load(f), default=str))


def resolve(spec, node):
    """Follows local $refs (`#/a/b`) until the node is not a reference."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are supported: {ref}"
        node = spec
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        seen += 1
        assert seen < 50, f"$ref loop at {ref}"
    return node


def operations(spec):
    """{(METHOD, path template): operation object}."""
    ops = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                ops[(method.upper(), path)] = op
    return ops


def op_parameters(spec, path, method):
    item = spec["paths"][path]
    params = [resolve(spec, p) for p in item.get("parameters", [])]
    params += [resolve(spec, p) for p in item[method.lower()].get("parameters", [])]
    return params


def shape(path):
    """'/v2/agent/{agent_id}/stop' -> '/v2/agent/{}/stop' (routes.c's notation)."""
    return re.sub(r"\{[^}/]+\}", "{}", path)


# ---------------------------------------------------------------- a small JSON Schema checker

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _is_type(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or \
            (isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown schema type {t!r}")


def validate(spec, schema, value, where="$", strict=True):
    """Errors (a list of strings) of `value` against `schema`. strict: an object member that a
    schema with `properties` (and no `additionalProperties`) does not declare is an error, so an
    answer carrying an undocumented field fails."""
    schema = resolve(spec, schema)
    errs = []
    if schema is True or schema == {}:
        return errs
    if schema is False:
        return [f"{where}: no value is allowed here"]
    for sub in schema.get("allOf", []):
        errs += validate(spec, sub, value, where, strict)
    if "anyOf" in schema:
        if not any(not validate(spec, s, value, where, strict) for s in schema["anyOf"]):
            errs.append(f"{where}: matches none of anyOf")
    if "oneOf" in schema:
        branches = [validate(spec, s, value, where, strict) for s in schema["oneOf"]]
        ok = sum(1 for b in branches if not b)
        if ok != 1:
            detail = "; ".join(e for b in branches for e in b[:2])
            errs.append(f"{where}: matches {ok} branches of oneOf, not 1 ({detail})")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, t) for t in types):
            return errs + [f"{where}: {json.dumps(value)[:80]} is not of type {types}"]
    if "const" in schema and value != schema["const"]:
        errs.append(f"{where}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e18):
            errs.append(f"{where}: length {len(value)} out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errs.append(f"{where}: {value!r} does not match {schema['pattern']}")
        fmt = schema.get("format")
        if fmt == "uuid" and not UUID_RE.match(value):
            errs.append(f"{where}: {value!r} is not a uuid")
        if fmt == "date-time" and not DATETIME_RE.match(value):
            errs.append(f"{where}: {value!r} is not a date-time")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{where}: {value} > maximum {schema['maximum']}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 1e18):
            errs.append(f"{where}: {len(value)} items out of range")
        if "items" in schema:
            for i, item in enumerate(value):
                errs += validate(spec, schema["items"], item, f"{where}[{i}]", strict)
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errs.append(f"{where}: required property {name!r} is missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name, member in value.items():
            if name in props:
                errs += validate(spec, props[name], member, f"{where}.{name}", strict)
            elif isinstance(extra, dict):
                errs += validate(spec, extra, member, f"{where}.{name}", strict)
            elif extra is False or (strict and props and extra is None):
                errs.append(f"{where}: property {name!r} is not documented")
        if "propertyNames" in schema:
            for name in value:
                errs += validate(spec, schema["propertyNames"], name, f"{where} key {name!r}",
                                 strict)
    return errs


# ---------------------------------------------------------------- calling documented operations

def documented_op(ctx, method, template):
    op = ctx.ops.get((method, template))
    assert op is not None, f"{method} {template} is not in proto/openapi.yaml"
    return op


def check_response(ctx, method, template, r):
    """Asserts r is an answer the document allows for the operation; returns r."""
    op = documented_op(ctx, method, template)
    responses = {str(k): v for k, v in op["responses"].items()}
    assert str(r.status) in responses, \
        f"{method} {template} answered {r.status}, which the document does not list " \
        f"(documented: {sorted(responses)}): {r!r}"
    resp = resolve(ctx.spec, responses[str(r.status)])
    content = resp.get("content", {})
    if not content:
        assert r.text == "", f"{method} {template} {r.status}: undocumented body {r!r}"
        return r
    ctype = r.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, \
        f"{method} {template} {r.status}: Content-Type {ctype!r} not in {sorted(content)}"
    schema = content[ctype].get("schema")
    assert schema is not None, f"{method} {template} {r.status} {ctype}: no schema documented"
    if ctype == "application/json":
        assert r.json is not None, f"{method} {template} {r.status}: body is not JSON: {r!r}"
        body = r.json
        if r.status >= 400:
            assert body.get("error") == r.status, f"error body names another status: {r!r}"
    else:
        body = r.text
    errs = validate(ctx.spec, schema, body)
    assert not errs, f"{method} {template} {r.status}: body does not match the document:\n  " + \
        "\n  ".join(errs[:20]) + f"\nbody: {r.text[:1500]}"
    return r


def call(ctx, method, template, ids=None, expect=None, body=None, raw=None, key=True,
         headers=None, query=""):
    """One request to a documented operation, path params filled from `ids`; checked against
    the document and, when given, against the status the scenario expects."""
    documented_op(ctx, method, template)
    path = template
    for name, value in (ids or {}).items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"unfilled path parameter in {path}"
    r = ctx.http(method, path + (("?" + query) if query else ""), body=body, raw=raw,
                 key=ctx.key if key is True else key, headers=headers)
    check_response(ctx, method, template, r)
    ctx.seen.setdefault((method, template), set()).add(str(r.status))
    if expect is not None:
        assert r.status == expect, f"{method} {path}?{query}: expected {expect}, got {r!r}"
    return r


def example_value(ctx, media):
    """The first example of a media type object (`example` or `examples`)."""
    if "example" in media:
        return copy.deepcopy(media["example"])
    first = next(iter(media["examples"].values()))
    return copy.deepcopy(resolve(ctx.spec, first)["value"])


def request_example(ctx, method, template):
    op = documented_op(ctx, method, template)
    return example_value(ctx, resolve(ctx.spec, op["requestBody"])["content"]["application/json"])


def new_agent(ctx):
    r = call(ctx, "POST", "/v2/agent", body=AGENT, expect=200)
    return r.json["agent_id"]


def new_call(ctx, agent_id, **extra):
    body = {"agent_id": agent_id, "recipient_phone_number": "+14155550100", **extra}
    return call(ctx, "POST", "/call", body=body, expect=200).json["execution_id"]


# ---------------------------------------------------------------- reading the C sources

def route_table():
    """[(METHOD, pattern, handler)] from services/api/routes.c."""
    src = open(os.path.join(API_DIR, "routes.c")).read()
    table = re.search(r"const pl_route api_routes\[\] = \{(.*?)\n\};", src, re.S)
    assert table, "api_routes[] not found in routes.c"
    rows = re.findall(r'\{\s*"([A-Z]+)",\s*"([^"]+)",\s*(\w+),\s*"\w+"\s*\}', table.group(1))
    entries = re.findall(r"\{\s*\"", table.group(1))
    assert rows and len(rows) == len(entries), f"could not read every route of routes.c: {rows}"
    return rows


def ops_endpoints():
    """The unauthenticated paths common/http.c serves itself (GET only)."""
    src = open(HTTP_C).read()
    body = re.search(r"static int ops_route\(.*?\n\}\n", src, re.S)
    assert body, "ops_route not found in common/http.c"
    assert re.search(r'strcmp\(r\.method, "GET"\) == 0\)\s*status = ops_route', src), \
        "ops_route is no longer GET-only; update this test and the document"
    paths = re.findall(r'strcmp\(r->path, "(/[^"]+)"\) == 0', body.group(0))
    assert paths, "no paths found in ops_route"
    return [("GET", p) for p in paths]


def handler_source(fn):
    """The text of the C function `fn` in services/api/*.c."""
    for name in sorted(os.listdir(API_DIR)):
        if not name.endswith(".c"):
            continue
        src = open(os.path.join(API_DIR, name)).read()
        m = re.search(r"^int " + re.escape(fn) + r"\(pl_req \*r\)\n\{.*?^\}$", src, re.S | re.M)
        if m:
            return m.group(0)
    raise AssertionError(f"handler {fn} not found in services/api")


# ---------------------------------------------------------------- suite

def setup(ctx):
    ctx.spec = load_yaml(SPEC_PATH)
    ctx.ops = operations(ctx.spec)
    ctx.seen = {}
    ctx.start_api()
    ctx.account, ctx.key = ctx.new_account("openapi")


def test_document_structure(ctx):
    spec = ctx.spec
    assert str(spec["openapi"]).startswith("3.1."), spec["openapi"]
    assert "http://localhost:8080" in [s["url"] for s in spec["servers"]]
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer"), scheme
    assert spec["security"] == [{"bearerAuth": []}], spec["security"]
    schemas = spec["components"]["schemas"]
    for name in ("Agent", "AgentConfig", "Task", "ToolsConfig", "TaskConfig", "Execution",
                 "ExecutionPage", "ExecutionLog", "User", "MakeCallRequest", "MakeCallStatus",
                 "Error", "AccessDenied"):
        assert name in schemas, f"components/schemas/{name} is missing"
    tags = {t["name"] for t in spec["tags"]}
    ids = set()
    public = {p for _, p in ops_endpoints()}
    for (method, path), op in ctx.ops.items():
        where = f"{method} {path}"
        assert op.get("operationId") and op["operationId"] not in ids, where
        ids.add(op["operationId"])
        assert op.get("summary") and op.get("tags") and set(op["tags"]) <= tags, where
        responses = {str(k): v for k, v in op["responses"].items()}
        assert "default" not in responses, f"{where}: list the statuses, not `default`"
        if path in public:
            assert op.get("security") == [], f"{where} must declare `security: []`"
        elif (method, shape(path)) in SIGNED_ROUTES:  # a signature, or the owner's key
            assert op.get("security") == [{}, {"bearerAuth": []}], \
                f"{where} must declare `security: [{{}}, bearerAuth]`"
        else:
            assert "security" not in op, f"{where} must use the global bearerAuth"
            r401 = resolve(spec, responses.get("401", {}))
            s = r401.get("content", {}).get("application/json", {}).get("schema", {})
            assert s.get("$ref") == "#/components/schemas/AccessDenied", f"{where}: 401 body"
        for status, resp in responses.items():
            resp = resolve(spec, resp)
            for ctype, media in resp.get("content", {}).items():
                assert "schema" in media, f"{where} {status} {ctype}: no schema"
                if status.startswith("2"):
                    assert "example" in media or "examples" in media, \
                        f"{where} {status}: no example"
    params = op_parameters(spec, "/call", "POST")
    idem = [p for p in params if p["in"] == "header" and p["name"] == "Idempotency-Key"]
    assert idem and idem[0]["schema"]["minLength"] == 1 and idem[0]["schema"]["maxLength"] == 255


def test_every_route_is_documented_and_nothing_else(ctx):
    served = {(m, p) for m, p, _ in route_table()} | set(ops_endpoints())
    documented = {(m, shape(p)) for m, p in ctx.ops}
    missing = sorted(served - documented)
    extra = sorted(documented - served)
    assert not missing, f"served but not documented: {missing}"
    assert not extra, f"documented but not served: {extra}"
    assert len(documented) == len(ctx.ops), "two documented paths differ only in param names"


def test_documented_parameters_match_what_handlers_read(ctx):
    """Query parameters and headers each handler reads are exactly the documented ones."""
    by_shape = {(m, shape(p)): p for m, p in ctx.ops}
    checked = 0
    for method, pattern, fn in route_table():
        src = handler_source(fn)
        read_query = set(re.findall(r'query_(?:param|int)\(r, "(\w+)"', src)) | \
            set(re.findall(r'pl_http_query\(r, "(\w+)"', src))
        # Authorization is the bearerAuth security scheme's, never a parameter (OpenAPI ignores
        # a header parameter of that name)
        read_headers = set(re.findall(r'pl_http_header\(r, "([\w-]+)"\)', src)) - {"Authorization"}
        params = op_parameters(ctx.spec, by_shape[(method, pattern)], method)
        doc_query = {p["name"] for p in params if p["in"] == "query"}
        doc_headers = {p["name"] for p in params if p["in"] == "header"}
        doc_path = [p["name"] for p in params if p["in"] == "path"]
        assert read_query == doc_query, (method, pattern, read_query, doc_query)
        assert read_headers == doc_headers, (method, pattern, read_headers, doc_headers)
        assert len(doc_path) == pattern.count("{}"), (method, pattern, doc_path)
        checked += 1
    assert checked >= 13


def test_task_config_ranges_match_the_validator(ctx):
    src = open(os.path.join(API_DIR, "agent_config.c")).read()
    block = re.search(r"\} nums\[\] = \{(.*?)\};", src, re.S).group(1)
    rows = re.findall(r'\{"(\w+)",\s*(-?[\d.]+),\s*(-?[\d.]+),\s*([01])\}', block)
    assert len(rows) >= 10, rows
    props = resolve(ctx.spec, ctx.spec["components"]["schemas"]["TaskConfig"])["properties"]
    for name, lo, hi, integer in rows:
        assert name in props, f"TaskConfig.{name} is not documented"
        s = props[name]
        assert (s.get("minimum"), s.get("maximum")) == (float(lo), float(hi)), (name, s)
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        assert ("integer" if integer == "1" else "number") in types, (name, types)
    for kind, jtype in (("bools", "boolean"), ("strings", "string")):
        block = re.search(r"\b" + kind + r"\[\] = \{(.*?)\};", src, re.S).group(1)
        for name in re.findall(r'"(\w+)"', block):
            assert name in props and jtype in props[name]["type"], (name, props.get(name))


def test_checker_rejects_what_it_must(ctx):
    """The checks above can fail: an undocumented status, a missing required member, an
    undocumented member and a wrong type are each reported."""
    class Fake(harness.Response):
        pass

    def fake(status, body):
        return Fake(status, json.dumps(body).encode(), {"Content-Type": "application/json"})

    for r in (fake(418, {"error": 418, "message": "x", "detail": "x"}),
              fake(200, {"name": "n", "email": "e", "wallet": 1,
                         "concurrency": {"max": 1, "current": 0}}),
              fake(200, {"id": MISSING, "name": "n", "email": "e", "wallet": 1, "extra": 1,
                         "concurrency": {"max": 1, "current": 0}}),
              fake(200, {"id": MISSING, "name": "n", "email": "e", "wallet": "1",
                         "concurrency": {"max": 1, "current": 0}}),
              fake(401, {"error": 401, "message": "nope", "detail": "nope"})):
        try:
            check_response(ctx, "GET", "/user/me", r)
        except AssertionError:
            continue
        raise AssertionError(f"the checker accepted {r!r}")
    check_response(ctx, "GET", "/user/me", fake(200, {
        "id": MISSING, "name": "n", "email": "e", "wallet": 1.5,
        "concurrency": {"max": 1, "current": 0}}))


def test_agent_operations(ctx):
    a = {"agent_id": new_agent(ctx)}
    # create: the brief's body, the document's own example, and each error
    call(ctx, "POST", "/v2/agent", body=request_example(ctx, "POST", "/v2/agent"), expect=200)
    call(ctx, "POST", "/v2/agent", body=AGENT, key=None, expect=401)
    call(ctx, "POST", "/v2/agent", body=AGENT, key="not-a-key", expect=401)
    call(ctx, "POST", "/v2/agent", raw=b"{not json", expect=400)
    call(ctx, "POST", "/v2/agent", body={}, expect=422)
    bad = copy.deepcopy(AGENT)
    bad["agent_config"]["tasks"][0]["task_config"]["hangup_after_silence"] = 0
    r = call(ctx, "POST", "/v2/agent", body=bad, expect=422)
    assert r.json["message"].startswith("agent_config.tasks[0].task_config.hangup_after_silence")
    call(ctx, "POST", "/v2/agent", raw=BIG, expect=413)

    r = call(ctx, "GET", "/v2/agent/all", expect=200)
    assert a["agent_id"] in [x["id"] for x in r.json]
    call(ctx, "GET", "/v2/agent/all", key=None, expect=401)

    t = "/v2/agent/{agent_id}"
    r = call(ctx, "GET", t, a, expect=200)
    assert r.json["id"] == a["agent_id"] and r.json["agent_name"] == "A"
    call(ctx, "GET", t, a, key=None, expect=401)
    call(ctx, "GET", t, {"agent_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"agent_id": "not-a-uuid"}, expect=422)

    put = request_example(ctx, "PUT", t)
    call(ctx, "PUT", t, a, body=put, expect=200)
    assert call(ctx, "GET", t, a, expect=200).json["agent_name"] == \
        put["agent_config"]["agent_name"]
    call(ctx, "PUT", t, a, body=AGENT, key=None, expect=401)
    call(ctx, "PUT", t, a, raw=b"[1]", expect=400)
    call(ctx, "PUT", t, {"agent_id": MISSING}, body=AGENT, expect=404)
    call(ctx, "PUT", t, a, raw=BIG, expect=413)
    call(ctx, "PUT", t, a, body={"agent_config": AGENT["agent_config"]}, expect=422)
    call(ctx, "PUT", t, {"agent_id": "123"}, body=AGENT, expect=422)

    patch = request_example(ctx, "PATCH", t)
    call(ctx, "PATCH", t, a, body=patch, expect=200)
    got = call(ctx, "GET", t, a, expect=200).json
    assert got["agent_name"] == patch["agent_config"]["agent_name"], got
    assert got["tasks"][0]["tools_config"]["input"]["provider"] == \
        patch["agent_config"]["telephony_provider"], got
    call(ctx, "PATCH", t, a, body={"agent_prompts": {"task_1": {"system_prompt": "p"}}},
         expect=200)
    call(ctx, "PATCH", t, a, body=patch, key=None, expect=401)
    call(ctx, "PATCH", t, a, raw=b"", expect=400)
    call(ctx, "PATCH", t, {"agent_id": MISSING}, body=patch, expect=404)
    call(ctx, "PATCH", t, a, raw=BIG, expect=413)
    call(ctx, "PATCH", t, a, body={}, expect=422)
    call(ctx, "PATCH", t, a, body={"agent_config": {"tasks": []}}, expect=422)

    doomed = {"agent_id": new_agent(ctx)}
    call(ctx, "DELETE", t, doomed, key=None, expect=401)
    call(ctx, "DELETE", t, doomed, expect=200)
    call(ctx, "DELETE", t, doomed, expect=404)
    call(ctx, "GET", t, doomed, expect=404)
    call(ctx, "DELETE", t, {"agent_id": "x"}, expect=422)

    t = "/v2/agent/{agent_id}/stop"
    waiting = new_call(ctx, a["agent_id"])
    r = call(ctx, "POST", t, a, expect=200)
    assert r.json["stopped_executions"] == [waiting], r
    call(ctx, "POST", t, a, key=None, expect=401)
    call(ctx, "POST", t, {"agent_id": MISSING}, expect=404)
    call(ctx, "POST", t, {"agent_id": "nope"}, expect=422)

    t = "/v2/agent/{agent_id}/executions"
    r = call(ctx, "GET", t, a, expect=200)
    assert r.json["total"] == 1 and r.json["data"][0]["id"] == waiting, r
    # every documented query parameter, each with a value the document says is valid
    for p in op_parameters(ctx.spec, t, "GET"):
        if p["in"] != "query":
            continue
        s = resolve(ctx.spec, p["schema"])
        value = s.get("default", (s.get("examples") or s.get("enum") or [None])[0])
        if value is None:
            value = {"integer": 1, "boolean": False, "string": "b1"}[s.get("type", "string")]
        if isinstance(value, bool):
            value = str(value).lower()
        call(ctx, "GET", t, a, query=f"{p['name']}={value}", expect=200)
    call(ctx, "GET", t, a, query="page_size=1&page_number=1&status=stopped&call_type=outbound"
         "&provider=twilio&from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00%2B05:30"
         "&answered_by_voice_mail=false", expect=200)
    call(ctx, "GET", t, a, key=None, expect=401)
    call(ctx, "GET", t, {"agent_id": MISSING}, expect=404)
    call(ctx, "GET", t, a, query="page_size=51", expect=422)
    call(ctx, "GET", t, {"agent_id": "all"}, expect=422)


def test_call_and_execution_operations(ctx):
    agent = new_agent(ctx)
    body = request_example(ctx, "POST", "/call")
    body["agent_id"] = agent
    r = call(ctx, "POST", "/call", body=body, expect=200)
    eid = r.json["execution_id"]
    # Idempotency-Key: the same request answers the same execution; another body is refused
    key = {"Idempotency-Key": "openapi-" + str(uuid.uuid4())}
    small = {"agent_id": agent, "recipient_phone_number": "+14155550101"}
    first = call(ctx, "POST", "/call", body=small, headers=key, expect=200).json["execution_id"]
    again = call(ctx, "POST", "/call", body=small, headers=key, expect=200).json["execution_id"]
    assert first == again
    call(ctx, "POST", "/call", body={**small, "user_data": {"x": 1}}, headers=key, expect=422)
    call(ctx, "POST", "/call", body=small, headers={"Idempotency-Key": "k" * 256}, expect=422)
    later = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=2))
    scheduled = new_call(ctx, agent, scheduled_at=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    call(ctx, "POST", "/call", body=small, key=None, expect=401)
    call(ctx, "POST", "/call", raw=b'"str"', expect=400)
    call(ctx, "POST", "/call", body={**small, "agent_id": MISSING}, expect=404)
    call(ctx, "POST", "/call", raw=BIG, expect=413)
    r = call(ctx, "POST", "/call", body={**small, "recipient_phone_number": "12"}, expect=422)
    assert r.json["message"].startswith("recipient_phone_number")

    t = "/call/{execution_id}/stop"
    call(ctx, "POST", t, {"execution_id": scheduled}, key=None, expect=401)
    call(ctx, "POST", t, {"execution_id": scheduled}, expect=200)
    call(ctx, "POST", t, {"execution_id": scheduled}, expect=409)
    call(ctx, "POST", t, {"execution_id": MISSING}, expect=404)
    call(ctx, "POST", t, {"execution_id": "zzz"}, expect=422)

    t = "/executions/{execution_id}"
    r = call(ctx, "GET", t, {"execution_id": eid}, expect=200)
    assert r.json["status"] == "queued" and r.json["batch_run_details"] is None
    assert call(ctx, "GET", t, {"execution_id": scheduled}, expect=200).json["scheduled_at"]
    # A finished call with every optional part filled, as the other services write it. A
    # fresh execution: the api may cache what it has already rendered (the services that write
    # executions publish an event that invalidates it; a bare UPDATE does not).
    done = new_call(ctx, agent)
    ctx.sql("""UPDATE executions SET status = 'completed', batch_id = 'b1', attempt = 1,
        conversation_duration = 42.5, total_cost = 11.3, summary = 'ok', error_message = 'none',
        transcript = E'assistant: Hi\\nuser: Hello\\n', recording_url = 'https://r.example/1.wav',
        answered_by_voice_mail = true,
        cost_breakdown = $j${"llm": 1.2, "network": 4.1, "platform": 2, "synthesizer": 3.3,
                            "transcriber": 0.7}$j$,
        usage_breakdown = $j${"synthesizer_characters": 412, "synthesizer_model": "m",
            "transcriber_duration": 42.5, "transcriber_model": "nova-2", "llm_tokens": 1874,
            "llm_model": {"gpt-4.1-mini": {"input": 1826, "output": 48}}}$j$,
        extracted_data = $j${"interested": true}$j$,
        telephony_data = telephony_data || $j${"duration": "43", "provider_call_id": "CA1",
            "hangup_by": "Callee", "hangup_reason": "Normal Hangup", "hangup_provider_code": 4000,
            "ring_duration": 5, "post_dial_delay": 1, "hosted_telephony": true,
            "to_number_carrier": "Carrier"}$j$,
        transfer_call_data = $j${"status": "completed", "to_number": "+14155550111"}$j$,
        latency_data = $j${"time_to_first_audio": 820,
            "transcriber": {"time_to_connect": 95, "turns": [{"turn": 1, "turn_latency": [210]}]},
            "llm": {"time_to_connect": 40, "turns": [{"turn": 1, "turn_latency": [380, 12]}]},
            "synthesizer": {"time_to_connect": 120, "turns": []}}$j$
        WHERE id = :'p1'""", done)
    r = call(ctx, "GET", t, {"execution_id": done}, expect=200)
    assert r.json["batch_run_details"]["retried"] == 1 and r.json["latency_data"], r
    call(ctx, "GET", t, {"execution_id": done}, key=None, expect=401)
    call(ctx, "GET", t, {"execution_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"execution_id": "123"}, expect=422)
    page = call(ctx, "GET", "/v2/agent/{agent_id}/executions", {"agent_id": agent},
                query="status=completed", expect=200).json
    assert [e["id"] for e in page["data"]] == [done], page

    t = "/executions/{execution_id}/log"
    assert call(ctx, "GET", t, {"execution_id": done}, expect=200).json["data"] == []
    ctx.sql("INSERT INTO execution_logs (execution_id, type, component, provider, data) VALUES"
            " (:'p1', 'request', 'llm', 'openai', 'hi'), (:'p1', 'response', 'llm', NULL, 'yo')",
            done)
    r = call(ctx, "GET", t, {"execution_id": done}, expect=200)
    assert len(r.json["data"]) == 2, r
    call(ctx, "GET", t, {"execution_id": done}, key=None, expect=401)
    call(ctx, "GET", t, {"execution_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"execution_id": "abc"}, expect=422)


def test_account_and_ops_operations(ctx):
    r = call(ctx, "GET", "/user/me", expect=200)
    assert r.json["id"] == ctx.account, r
    call(ctx, "GET", "/user/me", key=None, expect=401)
    call(ctx, "GET", "/user/me", key="pl_wrong", expect=401)
    for key in (None, "garbage"):  # the ops endpoints ignore the key altogether
        call(ctx, "GET", "/healthz", key=key, expect=200)
        call(ctx, "GET", "/readyz", key=key, expect=200)
        r = call(ctx, "GET", "/metrics", key=key, expect=200)
        assert "pl_http_requests_total" in r.text
    ctx.redis.stop()
    try:
        r = call(ctx, "GET", "/readyz", key=None, expect=503)
        assert "redis" in r.json["message"], r
    finally:
        ctx.redis.start()
    harness.eventually(lambda: ctx.http("GET", "/readyz").status == 200, timeout=10)


def multipart(fields=(), files=()):
    """(raw body, headers) of a multipart/form-data request: fields are (name, text) pairs,
    files (name, filename, bytes) triples."""
    b = "openapi-" + uuid.uuid4().hex
    out = b""
    for name, value in fields:
        out += f'--{b}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, filename, data in files:
        out += (f'--{b}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
                f'\r\nContent-Type: text/csv\r\n\r\n').encode() + data + b"\r\n"
    return out + f"--{b}--\r\n".encode(), {"Content-Type": f"multipart/form-data; boundary={b}"}


def new_batch(ctx, agent_id, csv=b"contact_number,name\n+14155550100,Bruce\n"):
    raw, h = multipart([("agent_id", agent_id)], [("file", "contacts.csv", csv)])
    return {"batch_id": call(ctx, "POST", "/batches", raw=raw, headers=h,
                             expect=200).json["batch_id"]}


def test_batch_operations(ctx):
    agent = new_agent(ctx)
    t = "/batches"
    csv = b"contact_number,name\n+14155550100,Bruce\n4155550101,Selina\n"
    raw, h = multipart([("agent_id", agent), ("from_phone_numbers", '["+14155550199"]'),
                        ("retry_config", '{"enabled": true, "max_retries": 2}')],
                       [("file", "contacts.csv", csv)])
    r = call(ctx, "POST", t, raw=raw, headers=h, expect=200)
    assert r.json["valid_contacts"] == 1 and r.json["invalid_contacts"][0]["row"] == 3, r
    b = {"batch_id": r.json["batch_id"]}
    call(ctx, "POST", t, raw=raw, headers=h, key=None, expect=401)
    call(ctx, "POST", t, raw=raw[:-12], headers=h, expect=400)
    call(ctx, "POST", t, raw=BIG, headers=h, expect=413)
    call(ctx, "POST", t, body={"agent_id": agent}, expect=415)
    raw404, h404 = multipart([("agent_id", MISSING)], [("file", "c.csv", csv)])
    call(ctx, "POST", t, raw=raw404, headers=h404, expect=404)
    raw422, h422 = multipart([("agent_id", agent)], [("file", "c.csv", b"name\nBruce\n")])
    r = call(ctx, "POST", t, raw=raw422, headers=h422, expect=422)
    assert r.json["message"].startswith("file:"), r

    t = "/batches/{agent_id}/all"
    r = call(ctx, "GET", t, {"agent_id": agent}, expect=200)
    assert [x["batch_id"] for x in r.json] == [b["batch_id"]], r
    call(ctx, "GET", t, {"agent_id": agent}, key=None, expect=401)
    call(ctx, "GET", t, {"agent_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"agent_id": "nope"}, expect=422)

    t = "/batches/{batch_id}/executions"
    assert call(ctx, "GET", t, b, expect=200).json == []
    call(ctx, "GET", t, b, key=None, expect=401)
    call(ctx, "GET", t, {"batch_id": MISSING_BATCH}, expect=404)
    call(ctx, "GET", t, {"batch_id": "xyz"}, expect=422)

    t = "/batches/{batch_id}/schedule"
    later = (datetime.datetime.now(datetime.timezone.utc) +
             datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    form, fh = multipart([("scheduled_at", later)])
    call(ctx, "POST", t, b, raw=form, headers=fh, key=None, expect=401)
    call(ctx, "POST", t, b, raw=b"--x\r\n",
         headers={"Content-Type": "multipart/form-data; boundary=x"}, expect=400)
    call(ctx, "POST", t, b, raw=b"x", headers={"Content-Type": "text/plain"}, expect=415)
    call(ctx, "POST", t, b, raw=BIG,
         headers={"Content-Type": "application/x-www-form-urlencoded"}, expect=413)
    bad, bh = multipart([("scheduled_at", "tomorrow")])
    call(ctx, "POST", t, b, raw=bad, headers=bh, expect=422)
    call(ctx, "POST", t, {"batch_id": MISSING_BATCH}, raw=form, headers=fh, expect=404)
    call(ctx, "POST", t, {"batch_id": "q"}, raw=form, headers=fh, expect=422)
    r = call(ctx, "POST", t, b, raw=form, headers=fh, expect=200)
    assert r.json["batch_status"] == "scheduled" and r.json["executions"] == 1, r
    call(ctx, "POST", t, b, raw=form, headers=fh, expect=409)
    now = new_batch(ctx, agent)
    r = call(ctx, "POST", t, now, body={"scheduled_at": "2020-01-01T00:00:00Z"}, expect=200)
    assert r.json["batch_status"] == "queued", r

    t = "/batches/{batch_id}"
    r = call(ctx, "GET", t, b, expect=200)
    assert r.json["status"] == "scheduled" and r.json["execution_status"] == {"scheduled": 1}
    assert r.json["from_phone_numbers"] == ["+14155550199"] and len(r.json["invalid_contacts"]) == 1
    call(ctx, "GET", t, b, key=None, expect=401)
    call(ctx, "GET", t, {"batch_id": MISSING_BATCH}, expect=404)
    call(ctx, "GET", t, {"batch_id": "xyz"}, expect=422)
    r = call(ctx, "GET", "/batches/{batch_id}/executions", b, expect=200)
    assert len(r.json) == 1 and r.json[0]["batch_id"] == b["batch_id"], r

    t = "/batches/{batch_id}/stop"
    call(ctx, "POST", t, b, key=None, expect=401)
    call(ctx, "POST", t, {"batch_id": MISSING_BATCH}, expect=404)
    call(ctx, "POST", t, {"batch_id": "abc"}, expect=422)
    assert call(ctx, "POST", t, b, expect=200).json["stopped_executions"] == 1
    call(ctx, "POST", t, b, expect=409)

    t = "/batches/{batch_id}"
    call(ctx, "DELETE", t, now, expect=409)  # its call is still queued
    call(ctx, "POST", "/batches/{batch_id}/stop", now, expect=200)
    call(ctx, "DELETE", t, now, key=None, expect=401)
    call(ctx, "DELETE", t, now, expect=200)
    call(ctx, "DELETE", t, now, expect=404)
    call(ctx, "DELETE", t, {"batch_id": "abc"}, expect=422)


def test_recording_operations(ctx):
    """The signed recording URL (docs/postprocess.md): the api here runs with the default
    PL_RECORDING_SIGNING_KEY."""
    import hashlib
    import hmac
    import time

    def signed(eid, exp, key=b"parley-local-recording-key"):
        sig = hmac.new(key, f"{eid}.{exp}".encode(), hashlib.sha256).hexdigest()
        return f"exp={exp}&sig={sig}"

    t = "/recordings/{execution_id}.wav"
    eid = new_call(ctx, new_agent(ctx))
    wav = os.path.join(ctx.workdir, "openapi-recording.wav")
    with open(wav, "wb") as f:
        f.write(b"RIFF" + b"\0" * 40)
    later = int(time.time()) + 600
    call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, later), key=None, expect=404)
    ctx.sql("UPDATE executions SET recording_path = :'p2' WHERE id = :'p1'", eid, wav)
    r = call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, later), key=None,
             expect=200)
    assert r.headers["Content-Type"] == "audio/wav" and r.text.startswith("RIFF"), r
    call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, later, b"other"), key=None,
         expect=403)
    call(ctx, "GET", t, {"execution_id": eid}, key=None, expect=403)
    call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, int(time.time()) - 5),
         key=None, expect=410)
    # a byte range; one past the end; the owner's key without a signature; a bad key
    r = call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, later), key=None,
             headers={"Range": "bytes=0-3"}, expect=206)
    assert r.text == "RIFF" and r.headers["Content-Range"] == "bytes 0-3/44", r
    r = call(ctx, "GET", t, {"execution_id": eid}, query=signed(eid, later), key=None,
             headers={"Range": "bytes=44-"}, expect=416)
    assert r.headers["Content-Range"] == "bytes */44", r
    r = call(ctx, "GET", t, {"execution_id": eid}, expect=200)
    assert r.text.startswith("RIFF") and r.headers["Accept-Ranges"] == "bytes", r
    call(ctx, "GET", t, {"execution_id": eid}, key="pl_not_a_key", expect=401)


def test_webhook_operations(ctx):
    """The delivery log and redelivery (docs/webhooks.md). No dispatcher runs here: the trigger
    of 005_webhooks.sql writes the delivery rows, which stay pending."""
    hooked = dict(AGENT, agent_config=dict(AGENT["agent_config"],
                                            webhook_url="https://example.com/hook"))
    agent = call(ctx, "POST", "/v2/agent", body=hooked, expect=200).json["agent_id"]
    eid = new_call(ctx, agent)
    t = "/executions/{execution_id}/webhooks"
    r = call(ctx, "GET", t, {"execution_id": eid}, expect=200)
    assert [d["status"] for d in r.json["data"]] == ["queued"], r
    event = str(r.json["data"][0]["event_id"])
    plain = new_call(ctx, new_agent(ctx))
    assert call(ctx, "GET", t, {"execution_id": plain}, expect=200).json["data"] == []
    call(ctx, "GET", t, {"execution_id": eid}, key=None, expect=401)
    call(ctx, "GET", t, {"execution_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"execution_id": "nope"}, expect=422)

    t = "/executions/{execution_id}/webhooks/{event_id}/redeliver"
    ids = {"execution_id": eid, "event_id": event}
    r = call(ctx, "POST", t, ids, expect=202)
    assert r.json["delivery"]["redeliveries"] == 1, r
    call(ctx, "POST", t, ids, key=None, expect=401)
    call(ctx, "POST", t, {"execution_id": MISSING, "event_id": event}, expect=404)
    call(ctx, "POST", t, {"execution_id": eid, "event_id": "999999999"}, expect=404)
    call(ctx, "POST", t, {"execution_id": "nope", "event_id": event}, expect=422)
    call(ctx, "POST", t, {"execution_id": eid, "event_id": "abc"}, expect=422)
    ctx.sql("UPDATE webhook_deliveries SET lease_until = now() + interval '1 hour'"
            " WHERE event_id = :'p1'", event)
    call(ctx, "POST", t, ids, expect=409)


def test_phone_number_and_inbound_operations(ctx):
    """docs/inbound.md, "Phone numbers (api)": a body that is not JSON answers 400, a field or
    path id that fails validation 422, as everywhere in the api."""
    t = "/phone-numbers"
    n = call(ctx, "POST", t, body=request_example(ctx, "POST", t), expect=201).json
    call(ctx, "POST", t, body=request_example(ctx, "POST", t), expect=409)
    small = {"phone_number": "+14155550124", "telephony_provider": "exotel"}
    call(ctx, "POST", t, body=small, key=None, expect=401)
    call(ctx, "POST", t, raw=b"{nope", expect=400)
    r = call(ctx, "POST", t, body={**small, "telephony_provider": "vonage"}, expect=422)
    assert r.json["message"].startswith("telephony_provider"), r
    call(ctx, "POST", t, raw=BIG, expect=413)
    exotel = call(ctx, "POST", t, body=small, expect=201).json

    r = call(ctx, "GET", "/phone-numbers/all", expect=200)
    assert [x["id"] for x in r.json] == [exotel["id"], n["id"]], r
    call(ctx, "GET", "/phone-numbers/all", key=None, expect=401)

    t = "/phone-numbers/{phone_number_id}"
    assert call(ctx, "GET", t, {"phone_number_id": n["id"]}, expect=200).json == n
    call(ctx, "GET", t, {"phone_number_id": n["id"]}, key=None, expect=401)
    call(ctx, "GET", t, {"phone_number_id": MISSING}, expect=404)
    call(ctx, "GET", t, {"phone_number_id": "not-an-id"}, expect=422)

    agent = new_agent(ctx)
    t = "/inbound/setup"
    body = {**request_example(ctx, "POST", t), "agent_id": agent, "phone_number_id": n["id"]}
    r = call(ctx, "POST", t, body=body, expect=200)
    assert r.json["url"].endswith("/inbound/twilio/" + n["id"]), r
    r = call(ctx, "POST", t, body={**body, "phone_number_id": exotel["id"]}, expect=200)
    assert "/inbound/exotel/" + exotel["id"] + "/" in r.json["url"], r
    got = call(ctx, "GET", "/phone-numbers/{phone_number_id}", {"phone_number_id": n["id"]},
               expect=200).json
    assert got["agent_id"] == agent, got
    call(ctx, "POST", t, body=body, key=None, expect=401)
    r = call(ctx, "POST", t, body={**body, "ivr_config": {"enabled": True}}, expect=422)
    call(ctx, "POST", t, raw=b"[1]", expect=400)
    assert r.json["message"].startswith("ivr_config"), r
    call(ctx, "POST", t, body={**body, "agent_id": MISSING}, expect=404)
    call(ctx, "POST", t, raw=BIG, expect=413)

    t = "/inbound/unlink"
    body = {**request_example(ctx, "POST", t), "phone_number_id": n["id"]}
    assert call(ctx, "POST", t, body=body, expect=200).json["url"] is None
    call(ctx, "POST", t, body=body, key=None, expect=401)
    call(ctx, "POST", t, body={}, expect=422)
    call(ctx, "POST", t, raw=b"{nope", expect=400)
    call(ctx, "POST", t, body={"phone_number_id": MISSING}, expect=404)
    call(ctx, "POST", t, raw=BIG, expect=413)

    t = "/phone-numbers/{phone_number_id}"
    call(ctx, "DELETE", t, {"phone_number_id": n["id"]}, key=None, expect=401)
    call(ctx, "DELETE", t, {"phone_number_id": n["id"]}, expect=200)
    call(ctx, "DELETE", t, {"phone_number_id": n["id"]}, expect=404)
    call(ctx, "DELETE", t, {"phone_number_id": "x"}, expect=422)


def test_other_methods_on_documented_paths(ctx):
    """A method the document does not list on a documented path answers 405 with the error
    body; an undocumented path answers 404."""
    fill = {"agent_id": MISSING, "execution_id": MISSING, "batch_id": MISSING_BATCH,
            "event_id": "1", "phone_number_id": MISSING}
    templates = {p: re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$")
                 for p in ctx.spec["paths"]}
    checked = 0
    for path in ctx.spec["paths"]:
        concrete = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if any((method, p) in ctx.ops and rx.match(concrete) for p, rx in templates.items()):
                continue
            r = ctx.http(method, concrete, key=ctx.key)
            assert r.status == 405 and r.json and r.json["error"] == 405, (method, path, r)
            checked += 1
    assert checked > 20, checked
    r = ctx.http("GET", "/v2/agents", key=ctx.key)
    assert r.status == 404 and r.json["error"] == 404, r


def test_every_documented_status_was_answered(ctx):
    """Runs last: each operation was called, and each status it documents was seen, so the
    document lists no answer the service cannot give (500 aside)."""
    unseen = {}
    for (method, path), op in ctx.ops.items():
        documented = {str(s) for s in op["responses"]} - UNREACHABLE - RATE_LIMITED
        missing = documented - ctx.seen.get((method, path), set())
        if missing:
            unseen[f"{method} {path}"] = sorted(missing)
    assert not unseen, f"documented statuses never answered: {unseen}"
