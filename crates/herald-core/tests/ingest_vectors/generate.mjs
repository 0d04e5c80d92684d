// Writes the ingest verifiers' vectors made with the providers' official npm libraries
// (GitHub's @octokit/webhooks-methods, Shopify's @shopify/shopify-api, Zoom's @zoom/rivet).
//
// As generate.py: every case is signed by the library (or as its own tests sign), judged by the
// library's verify function, and written with the library's verdict, which Herald's verifier
// must repeat. Everything is fixed, so running it again writes identical files. Run through
// generate.sh, which installs the pinned versions (package.json, package-lock.json).
//
// It also judges generate.py's Stripe, Svix, Standard Webhooks and Telnyx cases again with those
// providers' npm libraries, and stops if one judges a case otherwise (accepted or refused).
//
// Usage: node generate.mjs OUT_DIR (after generate.py OUT_DIR)

import { createHmac } from "node:crypto";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

import { sign as octokitSign, verify as octokitVerify } from "@octokit/webhooks-methods";
import "@shopify/shopify-api/adapters/node";
import { shopifyApi, ApiVersion, LogSeverity } from "@shopify/shopify-api";
import { AwsLambdaReceiver } from "@zoom/rivet/users";
import Stripe from "stripe";
import { Webhook as SvixWebhook } from "svix";
import { Webhook as StandardWebhook } from "standardwebhooks";
import Telnyx from "telnyx";

const AT = 1_700_000_000;
const INGEST_URL = "https://webhooks.example.com/in/in_vectors";
// The installed version (generate.sh runs this file beside its node_modules).
function version(name) {
  return JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
}

class Fixture {
  constructor(name, types, packages, how) {
    this.name = name;
    this.types = types;
    this.library = Object.fromEntries(packages.map((name) => [`${name} (npm)`, version(name)]));
    this.how = how;
    this.cases = [];
  }

  // A library that judges a case otherwise than the generator meant stops the run.
  add(name, { expect, verdict, config, headers, body, now = AT, method = "POST", url = INGEST_URL, ...extra }) {
    if (verdict !== expect) {
      throw new Error(`${this.name} / ${name}: the library says ${verdict}, the generator meant ${expect}`);
    }
    this.cases.push({ name, method, url, headers, body, config, now, verdict, ...extra });
  }

  write(outDir) {
    const document = { source: this.name, types: this.types, library: this.library, how: this.how, cases: this.cases };
    writeFileSync(join(outDir, `${this.name}.json`), JSON.stringify(document, null, 2) + "\n");
  }
}

async function githubFixture() {
  const secret = "herald vectors: GitHub's secret";
  const fixture = new Fixture("github", ["github"], ["@octokit/webhooks-methods"],
    "signed with @octokit/webhooks-methods sign, judged by its verify");
  const body = '{"action":"opened","number":7,"pull_request":{"title":"Zoë’s fix ✓"},"repository":{"full_name":"acme/herald"}}';
  const add = async (name, expect, { signature, sentBody = body, key = secret }) => {
    const headers = { "X-GitHub-Event": "pull_request", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958" };
    let verdict = "refused";
    if (signature !== undefined) {
      headers["X-Hub-Signature-256"] = signature;
      verdict = (await octokitVerify(key, sentBody, signature)) ? "accepted" : "bad_signature";
    }
    fixture.add(name, { expect, verdict, config: { secret: key }, headers, body: sentBody });
  };
  const signature = await octokitSign(secret, body);
  await add("signed", "accepted", { signature });
  // The example of GitHub's "Validating webhook deliveries".
  await add("the documented example", "accepted", {
    signature: "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    sentBody: "Hello, World!", key: "It's a Secret to Everybody",
  });
  await add("tampered body", "bad_signature", { signature, sentBody: body.replace("opened", "closed") });
  await add("another hook's secret", "bad_signature", { signature, key: "someone else's" });
  await add("upper-case hex", "bad_signature", { signature: "sha256=" + signature.slice(7).toUpperCase() });
  await add("a SHA-1 signature in the SHA-256 header", "bad_signature", {
    signature: "sha1=" + createHmac("sha1", secret).update(body).digest("hex"),
  });
  await add("no signature", "refused", {});
  return fixture;
}

async function shopifyFixture() {
  const secret = "shpss_herald_vectors_0123456789abcdef";
  const api = (key) => shopifyApi({
    apiKey: "vectors", apiSecretKey: key, scopes: [], hostName: "webhooks.example.com",
    apiVersion: ApiVersion.October25, isEmbeddedApp: false, logger: { level: LogSeverity.Error, log: () => {} },
  });
  const fixture = new Fixture("shopify", ["shopify"], ["@shopify/shopify-api"],
    "signed with Node's crypto as the library's test helper getHmac does (base64 HMAC-SHA256 of the "
    + "body), judged by shopify.webhooks.validate (node adapter)");
  const body = '{"id":820982911946154500,"email":"zoë@example.com","total_price":"403.00","note":"ünïcode ✓"}';
  const hmac = (key, text) => createHmac("sha256", key).update(text, "utf8").digest("base64");
  const add = async (name, expect, { events = false, signature = hmac(secret, body), sentBody = body, key = secret }) => {
    const prefix = events ? "Shopify" : "X-Shopify";
    const headers = {
      [`${prefix}-Topic`]: "orders/create",
      [`${prefix}-Shop-Domain`]: "herald-vectors.myshopify.com",
      [`${prefix}-API-Version`]: "2025-10",
      [`${prefix}-Webhook-Id`]: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
      [`${prefix}-Triggered-At`]: "2023-11-14T22:13:20.000Z",
    };
    if (signature !== null) headers[`${prefix}-Hmac-Sha256`] = signature;
    const rawRequest = { method: "POST", url: "/in/in_vectors", headers: Object.fromEntries(Object.entries(headers).map(([n, v]) => [n.toLowerCase(), v])) };
    const result = await api(key).webhooks.validate({ rawBody: sentBody, rawRequest, rawResponse: {} });
    const verdict = result.valid ? "accepted"
      : result.reason === "invalid_hmac" ? "bad_signature"
        : result.reason === "missing_hmac" ? "missing_signature" : "refused";
    fixture.add(name, { expect, verdict, config: { secret: key }, headers, body: sentBody });
  };
  await add("signed", "accepted", {});
  await add("an Events API delivery (shopify-* headers)", "accepted", { events: true });
  await add("tampered body", "bad_signature", { sentBody: body.replace("403.00", "0.01") });
  await add("another app's secret", "bad_signature", { key: "shpss_someone_else" });
  await add("no signature", "missing_signature", { signature: null });
  await add("a hex signature instead of base64", "bad_signature", {
    signature: createHmac("sha256", secret).update(body, "utf8").digest("hex"),
  });
  return fixture;
}

async function zoomFixture() {
  const secret = "herald_vectors_zoom_token";
  const fixture = new Fixture("zoom", ["zoom"], ["@zoom/rivet"],
    "signed as Zoom's docs say (v0=hex HMAC-SHA256 of v0:timestamp:body), judged by @zoom/rivet's "
    + "AwsLambdaReceiver, which checks no timestamp and re-serialises the JSON it parsed (so every "
    + "body is compact JSON, as Zoom sends it); a URL validation case records rivet's answer");
  const hmac = (key, text) => createHmac("sha256", key).update(text).digest("hex");
  const judge = async (key, headers, body) => {
    const receiver = new AwsLambdaReceiver({ webhooksSecretToken: key });
    const quiet = console.debug;
    console.debug = () => {};
    const response = await receiver.start()({ body, headers, isBase64Encoded: false }, {});
    console.debug = quiet;
    return response;
  };
  const add = async (name, expect, { body, signedBody = body, key = secret, signature, challenge = false }) => {
    const headers = { "x-zm-request-timestamp": String(AT) };
    if (signature !== null) {
      headers["x-zm-signature"] = signature ?? `v0=${hmac(secret, `v0:${AT}:${signedBody}`)}`;
    }
    const response = await judge(key, headers, body);
    const verdict = response.statusCode === 200 ? "accepted" : "refused";
    const extra = challenge ? { challenge: JSON.parse(response.body) } : {};
    fixture.add(name, { expect, verdict, config: { secret: key }, headers, body, ...extra });
  };
  const body = '{"event":"meeting.started","event_ts":1700000000000,"payload":{"account_id":"AAAAAA","object":{"id":"85746065","topic":"Zoë’s meeting"}}}';
  await add("signed", "accepted", { body });
  await add("tampered body", "refused", { body: body.replace("started", "ended"), signedBody: body });
  await add("another app's secret token", "refused", { body, key: "someone_elses_token" });
  await add("upper-case hex", "refused", { body, signature: `v0=${hmac(secret, `v0:${AT}:${body}`).toUpperCase()}` });
  await add("URL validation", "accepted", {
    body: '{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1700000000000,"event":"endpoint.url_validation"}',
    challenge: true,
  });
  return fixture;
}

// The npm libraries that judge generate.py's cases a second time, each as its README shows.
const SECOND_JUDGES = {
  stripe: ["stripe", "stripe.webhooks.constructEvent (receivedAt: the case's now)", (c) => {
    new Stripe("sk_test_not_used").webhooks.constructEvent(
      c.body, c.headers["Stripe-Signature"], c.config.secret, undefined, undefined, c.now * 1000);
  }],
  svix: ["svix", "Webhook.verify", (c) => { new SvixWebhook(c.config.secret).verify(c.body, c.headers); }],
  "standard-webhooks": ["standardwebhooks", "Webhook.verify", (c) => {
    new StandardWebhook(c.config.secret).verify(c.body, c.headers);
  }],
  telnyx: ["telnyx", "client.webhooks.unwrap", async (c) => {
    await new Telnyx({ apiKey: "not used" }).webhooks.unwrap(c.body, { headers: c.headers, key: c.config.publicKey });
  }],
};

async function judgeAgain(outDir) {
  const realNow = Date.now;
  for (const [source, [name, how, judge]] of Object.entries(SECOND_JUDGES)) {
    const path = join(outDir, `${source}.json`);
    const fixture = JSON.parse(readFileSync(path, "utf8"));
    for (const c of fixture.cases) {
      Date.now = () => c.now * 1000;
      let verdict = "accepted";
      try {
        await judge(c);
      } catch {
        verdict = "refused";
      } finally {
        Date.now = realNow;
      }
      if ((c.verdict === "accepted") !== (verdict === "accepted")) {
        throw new Error(`${source} / ${c.name}: ${name} (npm) says ${verdict}, the PyPI library ${c.verdict}`);
      }
    }
    fixture.library[`${name} (npm)`] = version(name);
    fixture.how += `; judged again by ${name} (npm) ${how}, which agrees on every case`;
    writeFileSync(path, JSON.stringify(fixture, null, 2) + "\n");
  }
}

const outDir = process.argv[2];
mkdirSync(outDir, { recursive: true });
for (const fixture of [await githubFixture(), await shopifyFixture(), await zoomFixture()]) {
  fixture.write(outDir);
}
await judgeAgain(outDir);
