// Drives `agent-auth serve`'s MCP endpoint with the official MCP TypeScript client SDK
// (@modelcontextprotocol/client 2.4.0): OAuth discovery, dynamic registration, code + PKCE with
// `resource`, tools/list, a call, a scope step-up on 403 insufficient_scope, and a critical
// call that a person approves. The browser's part is played by form posts with a cookie jar.
//
// Run by agent-auth/tests/it/mcp_client.rs: one `ok <step>` line per step on stdout, and
// `approval <id>` when it waits for one line on stdin (the test approves, then writes it); any
// failure exits non-zero with the reason. Every secret it saw (tokens, codes, verifiers) is
// written to $SECRETS_OUT. Env: BASE, MCP_URL, USER_NAME, PASSWORD, SECRETS_OUT (optional),
// PUBLISH_ARGS (optional: publishPost's arguments as JSON), MCP_VERSION_NEGOTIATION (optional:
// `auto`, or a revision to pin; the default is legacy), CLIENT_METADATA_URL (optional: the
// client is known by the Client ID Metadata Document at this https URL instead of registering;
// the consent page must show its host, and `ok client metadata-document` is printed).
//
// What SDK 2.4.0 does, read from its sources (dist/*.mjs.map in node_modules):
// - Exports (all from '@modelcontextprotocol/client'): Client, StreamableHTTPClientTransport,
//   UnauthorizedError, ProtocolError, InsufficientScopeError; `OAuthClientProvider` is a type
//   (an object with redirectUrl, clientMetadata, clientInformation/saveClientInformation,
//   tokens/saveTokens, saveCodeVerifier/codeVerifier, redirectToAuthorization, and optional
//   state, saveDiscoveryState/discoveryState). Pass it as the transport's `authProvider`.
// - Protocol version: by default (versionNegotiation 'legacy') connect() sends `initialize`
//   offering 2025-11-25 and accepts 2025-11-25, 2025-06-18, 2025-03-26, 2024-11-05, 2024-10-07;
//   then every POST/GET/DELETE carries `mcp-protocol-version: <negotiated>` (and
//   `mcp-session-id` if the initialize response set one). Mcp-Method / Mcp-Name are sent only
//   in the 2026-07-28 era (versionNegotiation 'auto' or a pin, which first probes with
//   `server/discover`): never in the default mode. Metadata fetches carry
//   `MCP-Protocol-Version: 2025-11-25`.
// - Client ID Metadata Documents: when the provider has `clientMetadataUrl` (an https URL with
//   a path other than `/`) and the AS metadata says `client_id_metadata_document_supported:
//   true`, auth() saves `{client_id: clientMetadataUrl}` as the client information and does not
//   register; the token requests then authenticate with `none` (client_id in the body).
// - 401: the transport reads `resource_metadata` and `scope` from WWW-Authenticate and runs
//   auth(): PRM (the `resource_metadata` URL, else /.well-known/oauth-protected-resource/<path>,
//   else the root one) → its authorization_servers[0] → RFC 8414 metadata, whose `issuer` must
//   equal that string exactly → DCR (if no client) → authorization request. Scope: the
//   challenge's scope, else PRM scopes_supported, else clientMetadata.scope (plus
//   offline_access, with prompt=consent, only if the AS lists it and clientMetadata sets
//   grant_types with refresh_token). The same scope goes into the DCR body. `resource` is the
//   PRM's `resource`, sent verbatim on the authorization, code and refresh requests; it must
//   be MCP_URL's origin with a path prefix of MCP_URL's path. With tokens and a refresh token
//   it refreshes instead. Otherwise it calls redirectToAuthorization(url) and connect() throws
//   UnauthorizedError: the caller hands the callback's query to transport.finishAuth(params)
//   (checks `iss` against the metadata's issuer: required when
//   authorization_response_iss_parameter_supported is true; the SDK does not check `state`)
//   and connects again on a fresh transport.
// - 403 with `error="insufficient_scope"` (default onInsufficientScope 'reauthorize',
//   maxStepUpRetries 1): scope = union(scope seen so far, the token's `scope`, the challenge's
//   scope); forces a new authorization request (no refresh) when that exceeds the token's
//   scope; calls redirectToAuthorization again, and the call throws UnauthorizedError. So the
//   step-up is automatic up to the browser: finishAuth(params) then retry the call on the same
//   client and session. The retry sends the same Mcp-Session-Id with the new token.
// - A JSON-RPC error answer rejects the call with ProtocolError {code, message, data};
//   -32042 with data.elicitations becomes UrlElicitationRequiredError (a ProtocolError).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import {
  Client,
  ProtocolError,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from '@modelcontextprotocol/client';
import { browser, form } from '../oauth-client/browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE');
const MCP_URL = new URL(env('MCP_URL'));
const REDIRECT_URI = 'http://127.0.0.1:1/callback';
const CLIENT_METADATA_URL = process.env.CLIENT_METADATA_URL || undefined;
const PUBLISH = '{"title": "Hello", "body": "From the MCP TypeScript SDK"}';
const secrets = [];
const ok = (step) => console.log(`ok ${step}`);
const note = (what) => console.error(`note: ${what}`);
const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
};
const scopes = (s) => new Set((s ?? '').split(' ').filter(Boolean));

// ---- A browser: a cookie jar and form posts (../oauth-client/browser.mjs) -------------------
const { browse, post } = browser(BASE, secrets);
const redirected = (r) => r.status === 302 || r.status === 303;
const backToClient = (r) => redirected(r) && r.headers.get('location').startsWith(REDIRECT_URI);

// The person at the browser: from the authorization URL the SDK built, through sign-in (if
// the jar holds no session) and consent, to the redirect back; returns the callback's query.
async function playBrowser(authorizationUrl) {
  let response = await browse(authorizationUrl);
  if (redirected(response) && !backToClient(response)) {
    const page = await (await browse(new URL(response.headers.get('location'), BASE))).text();
    response = await post(new URL('/login', BASE), [
      ...form(page).fields,
      ['user', env('USER_NAME')],
      ['password', env('PASSWORD')],
    ]);
    check(response.status === 303, `signed in (${response.status})`);
    response = await browse(new URL(response.headers.get('location'), BASE));
  }
  if (!backToClient(response)) {
    check(response.status === 200, `the consent page (${response.status})`);
    const page = await response.text();
    if (CLIENT_METADATA_URL) {
      // The site that vouches for the client, beside the name its document gives.
      const host = new URL(CLIENT_METADATA_URL).host;
      check(page.includes(`<strong>${host}</strong>`), `the consent page shows ${host}`);
    }
    const unavailable = /not yours to give: ([^<]*)/.exec(page)?.[1];
    if (unavailable) note(`the consent page cannot grant: ${unavailable}`);
    const consent = form(page);
    response = await post(new URL(consent.action || '/oauth/authorize', BASE), [
      ...consent.fields,
      ['decision', 'allow'],
    ]);
  }
  check(backToClient(response), `redirected back to the client (${response.status})`);
  return new URL(response.headers.get('location')).searchParams;
}

// ---- The OAuthClientProvider: in memory ----------------------------------------------------
class Provider {
  redirectUrl = REDIRECT_URI;
  // No grant_types: the SDK registers authorization_code + refresh_token by default, and does
  // not add offline_access to the scope.
  clientMetadata = {
    client_name: 'MCP TypeScript SDK test',
    redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none',
    application_type: 'native',
  };
  // Set: the SDK uses it as the client_id when the AS supports metadata documents.
  clientMetadataUrl = CLIENT_METADATA_URL;
  authorizations = []; // the scope of each authorization request, in order
  #client; #tokens; #verifier; #discovery; #state; #callback;
  state() {
    this.#state = randomBytes(16).toString('base64url');
    return this.#state;
  }
  clientInformation() { return this.#client; }
  saveClientInformation(info) { this.#client = info; }
  tokens() { return this.#tokens; }
  saveTokens(tokens) {
    secrets.push(tokens.access_token, tokens.refresh_token);
    this.#tokens = tokens;
  }
  saveCodeVerifier(verifier) {
    secrets.push(verifier);
    this.#verifier = verifier;
  }
  codeVerifier() { return this.#verifier; }
  saveDiscoveryState(state) { this.#discovery = state; }
  discoveryState() { return this.#discovery; }
  async redirectToAuthorization(url) {
    const scope = url.searchParams.get('scope');
    note(`authorization request: scope="${scope}" resource=${url.searchParams.get('resource')}`);
    check(url.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256');
    this.authorizations.push(scope);
    this.#callback = await playBrowser(url);
  }
  // The callback of the last authorization request, checked; taken once.
  callback() {
    const params = this.#callback;
    this.#callback = undefined;
    check(params, 'an authorization request was made');
    check(params.get('state') === this.#state, 'state');
    check(params.get('iss') === BASE, `iss (${params.get('iss')})`);
    check(params.get('code'), `a code (${params.get('error')})`);
    secrets.push(params.get('code'));
    return params;
  }
}

// ---- The flow ------------------------------------------------------------------------------
const provider = new Provider();
const negotiation = process.env.MCP_VERSION_NEGOTIATION;
const client = new Client(
  { name: 'agent-auth-mcp-client-test', version: '1.0.0' },
  negotiation && negotiation !== 'legacy'
    ? { versionNegotiation: { mode: negotiation === 'auto' ? 'auto' : { pin: negotiation } } }
    : {},
);
client.onerror = (error) => note(`transport: ${error.message}`);
const newTransport = () => new StreamableHTTPClientTransport(MCP_URL, { authProvider: provider });
let transport = newTransport();

// A tool call; if the transport re-authorized for a wider scope (a 403 insufficient_scope:
// the browser has played, the call threw UnauthorizedError), exchange the code and retry once.
async function call(name, args = {}) {
  try {
    return { result: await client.callTool({ name, arguments: args }), steppedUp: false };
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  const before = scopes(provider.tokens()?.scope);
  await transport.finishAuth(provider.callback());
  const after = scopes(provider.tokens()?.scope);
  note(`step-up for ${name}: "${[...before].join(' ')}" -> "${[...after].join(' ')}"`);
  check([...after].some((s) => !before.has(s)), `the step-up for ${name} granted more`);
  try {
    return { result: await client.callTool({ name, arguments: args }), steppedUp: true };
  } catch (error) {
    if (error instanceof UnauthorizedError) throw new Error(`${name}: refused again after the step-up`);
    throw error;
  }
}
const text = (result) => result.content?.map((c) => c.text ?? c.type).join(' ');
const succeeded = (name, result) => check(!result.isError, `${name} succeeded: ${text(result)}`);

async function main() {
  // 1. No token yet: the first connect gets a 401, the SDK discovers, registers and sends the
  // person to the authorization server, and throws UnauthorizedError.
  try {
    await client.connect(transport);
    throw new Error('check failed: the first connect needs authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  check(provider.authorizations.length === 1, 'one authorization request');
  await transport.finishAuth(provider.callback());
  check(provider.tokens()?.access_token, 'an access token');
  if (CLIENT_METADATA_URL) {
    const id = provider.clientInformation()?.client_id;
    check(id === CLIENT_METADATA_URL, `the client is its metadata document (${id})`);
    ok('client metadata-document');
  }
  note(`granted scope: "${provider.tokens().scope}"`);
  transport = newTransport();
  await client.connect(transport);
  note(`protocol version ${transport.protocolVersion}, session ${transport.sessionId ? 'yes' : 'none'}`);
  ok(`protocol ${transport.protocolVersion}`);
  ok('authorized');

  // 2. The tools this token may see.
  const { tools } = await client.listTools();
  ok(`tools ${tools.map((t) => t.name).sort().join(',')}`);

  // 3. Within the token's scope.
  const listed = await call('list_posts');
  succeeded('list_posts', listed.result);
  check(!listed.steppedUp, 'list_posts needs no step-up');
  ok('call list_posts');

  // 4. Outside it: 403 insufficient_scope, a wider authorization, the retry.
  const granted = scopes(provider.tokens()?.scope);
  const published = await call('publishPost', JSON.parse(process.env.PUBLISH_ARGS ?? PUBLISH));
  check(published.steppedUp, 'publishPost needed a step-up');
  const wider = scopes(provider.authorizations.at(-1));
  check([...granted].every((s) => wider.has(s)), 'the step-up keeps the granted scopes');
  check(wider.size > granted.size, 'the step-up asks for more');
  succeeded('publishPost', published.result);
  ok('step-up publishPost');

  // 5. A critical tool: refused until a person approves this very call, then admitted.
  const payment = { amount: 50, currency: 'EUR', to: 'ACME' };
  let approval;
  try {
    const first = await call('send_payment', payment);
    check(first.result.isError, `send_payment waits for an approval: ${text(first.result)}`);
    approval = first.result.structuredContent?.approval_id ?? first.result._meta?.approval_id;
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    note(`send_payment: ${error.code} ${error.message}`);
    approval = error.data?.approval_id ?? error.data?.elicitations?.[0]?.elicitationId;
  }
  check(typeof approval === 'string' && approval, 'an approval id');
  console.log(`approval ${approval}`);
  await stdinLine();
  const paid = await call('send_payment', payment);
  check(!paid.steppedUp, 'no second step-up for the approved payment');
  succeeded('send_payment', paid.result);
  ok('approved send_payment');
}

function stdinLine() {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: process.stdin });
    lines.once('line', (line) => {
      resolve(line); // before close(), whose 'close' would reject
      lines.close();
    });
    lines.once('close', () => reject(new Error('stdin closed before the approval')));
  });
}

let failed;
try {
  await main();
} catch (error) {
  failed = error;
  const data = error?.data === undefined ? '' : ` data=${JSON.stringify(error.data)}`;
  console.error(`failed: ${error?.name}: ${error?.message}${data}\n${error?.stack ?? ''}`);
}
if (process.env.SECRETS_OUT) {
  writeFileSync(process.env.SECRETS_OUT, JSON.stringify(secrets.filter(Boolean)));
}
await client.close().catch(() => {});
process.exit(failed ? 1 : 0);
