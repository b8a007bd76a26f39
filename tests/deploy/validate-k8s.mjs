// Offline validation of the Kubernetes manifests (no API server needed).
//
//   node tests/deploy/validate-k8s.mjs [file.yaml ...]     (default: deploy/k8s/*.yaml)
//
// Parses every YAML document of every file with the npm package `yaml` and validates each object
// against the Kubernetes OpenAPI schema with `kubernetes-models`, the class picked by
// apiVersion + kind; an apiVersion/kind the package does not know is a failure. This catches wrong
// types and missing required fields, not unknown (misspelled) fields: the models do not check those.
// Also enforced: every object has metadata.name and no metadata.namespace (the manifests are
// namespace-free; the namespace is chosen at `kubectl -n NS apply`).
//
// Prints one line per file and ends with `ok` (exit 0) or the error count (exit 1).
//
// Modules come from the project's pinned tools in .tools/node_modules (tools/package.json,
// installed by deploy/local/install.sh). NODE_PATH does not apply to ESM imports, so `yaml` is
// loaded with createRequire anchored at .tools/, and kubernetes-models (ESM only, whose exports
// map has no `require` condition) is imported by file URL from that same folder.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TOOLS = join(ROOT, ".tools");
const MODELS = join(TOOLS, "node_modules", "kubernetes-models");

function die(msg) {
  console.error(`validate-k8s: ${msg}`);
  process.exit(2);
}

if (!existsSync(join(TOOLS, "node_modules", "yaml")) || !existsSync(MODELS)) {
  die(`npm tools missing under ${TOOLS}; run: bash deploy/local/install.sh`);
}
const require = createRequire(join(TOOLS, "package.json"));
const YAML = require("yaml");

// apiVersion "apps/v1" -> <MODELS>/apps/v1/<Kind>.js; core "v1" -> <MODELS>/v1/<Kind>.js.
const API_VERSION_RE = /^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/;
const KIND_RE = /^[A-Z][A-Za-z0-9]*$/;
const classCache = new Map();

async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !API_VERSION_RE.test(apiVersion)) return null;
  if (typeof kind !== "string" || !KIND_RE.test(kind)) return null;
  const key = `${apiVersion}/${kind}`;
  if (classCache.has(key)) return classCache.get(key);
  let cls = null;
  const file = join(MODELS, ...apiVersion.split("/"), `${kind}.js`);
  if (existsSync(file)) {
    const mod = await import(pathToFileURL(file).href);
    const c = mod[kind];
    // Nested types (e.g. apps/v1 DeploymentSpec) have a file too but are not API objects: only a
    // class that declares this very apiVersion and kind is accepted.
    if (typeof c === "function" && c.apiVersion === apiVersion && c.kind === kind) cls = c;
  }
  classCache.set(key, cls);
  return cls;
}

function schemaErrors(err) {
  if (Array.isArray(err?.errors) && err.errors.length > 0) {
    return err.errors.map((e) => {
      const where = e.instancePath || "/";
      const detail = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
      return `${where}: ${e.message || e.keyword}${detail}`;
    });
  }
  return [String(err?.message || err)];
}

async function checkFile(path) {
  const errors = [];
  const objects = [];
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    return { errors: [`cannot read: ${e.message}`], objects };
  }
  const docs = YAML.parseAllDocuments(text, { prettyErrors: true });
  let n = 0;
  for (const doc of docs) {
    n += 1;
    const at = `document ${n}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) errors.push(`${at}: YAML: ${e.message.split("\n")[0].replace(/:$/, "")}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // empty document (e.g. a trailing ---)
    if (typeof obj !== "object" || Array.isArray(obj)) {
      errors.push(`${at}: not a mapping`);
      continue;
    }
    const { apiVersion, kind } = obj;
    const name = obj.metadata?.name;
    const label = `${at} (${kind ?? "?"}/${name ?? "?"})`;
    if (typeof name !== "string" || name === "") errors.push(`${label}: metadata.name is required`);
    if (obj.metadata?.namespace !== undefined) {
      errors.push(`${label}: metadata.namespace set; manifests must be namespace-free`);
    }
    const cls = await modelClass(apiVersion, kind);
    if (cls === null) {
      errors.push(`${label}: unknown apiVersion/kind ${JSON.stringify(apiVersion)}/${JSON.stringify(kind)}`);
      continue;
    }
    try {
      new cls(obj).validate();
    } catch (e) {
      for (const m of schemaErrors(e)) errors.push(`${label}: ${m}`);
      continue;
    }
    objects.push(`${kind}/${name}`);
  }
  if (objects.length === 0 && errors.length === 0) errors.push("no Kubernetes objects in file");
  return { errors, objects };
}

let files = process.argv.slice(2);
if (files.length === 0) {
  const dir = join(ROOT, "deploy", "k8s");
  files = existsSync(dir)
    ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f))
    : [];
  if (files.length === 0) die(`no manifests found in ${relative(process.cwd(), dir) || dir}`);
}

let failures = 0;
for (const f of files) {
  const shown = relative(ROOT, resolve(f));
  const { errors, objects } = await checkFile(f);
  if (errors.length === 0) {
    console.log(`ok    ${shown} (k8s schema: ${objects.join(", ")})`);
  } else {
    console.log(`FAIL  ${shown} (k8s schema)`);
    for (const e of errors) console.log(`        ${e}`);
    failures += errors.length;
  }
}
if (failures > 0) {
  console.log(`${failures} error(s)`);
  process.exit(1);
}
console.log("ok");
