// Drives `agent-auth serve`'s authorization server with oauth4webapi, a strict certified OAuth
// client: discovery, registration, code + PKCE with `resource` (the client checks `iss`), a call
// to the protected route, refresh and the reuse of a spent refresh token, introspection and
// revocation. The browser's part is played by form posts with a cookie jar.
//
// Run by agent-auth/tests/it/oauth_client.rs, which starts the server and reads what this prints:
// one `ok <step>` line per step; any failure exits non-zero with the reason. Every secret it
// saw (tokens, codes, verifiers) is written to $SECRETS_OUT, so that the test can look for them
// in the server's log and audit trail.
import { writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { browser, form as pageForm } from './browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE');
const RESOURCE = env('RESOURCE');
const PROTECTED = env('PROTECTED');
const SCOPE = env('SCOPE');
const UNTICK = process.env.UNTICK ?? '';
const insecure = { [oauth.allowInsecureRequests]: true };
const secrets = [];
const ok = (step) => console.log(`ok ${step}`);
const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
};

// ---- A browser: a cookie jar and form posts (browser.mjs) -----------------------------------
const { browse, post } = browser(BASE, secrets);
const form = (html) => pageForm(html, UNTICK);

// The person at the browser: follows the authorization request through sign-in and consent,
// and answers the redirect back to the client.
async function authorize(as, client, redirectUri, decision) {
  const verifier = oauth.generateRandomCodeVerifier();
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const state = oauth.generateRandomState();
  secrets.push(verifier);
  const url = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: client.client_id,
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    resource: RESOURCE,
  })) {
    url.searchParams.set(k, v);
  }
  let response = await browse(url);
  if (response.status === 303 || response.status === 302) {
    // Not signed in: the sign-in form, then back to the authorization request.
    const signIn = new URL(response.headers.get('location'), BASE);
    const page = await (await browse(signIn)).text();
    const { fields } = form(page);
    response = await post(new URL('/login', BASE), [
      ...fields,
      ['user', env('USER_NAME')],
      ['password', env('PASSWORD')],
    ]);
    check(response.status === 303, `signed in (${response.status})`);
    response = await browse(new URL(response.headers.get('location'), BASE));
  }
  check(response.status === 200, `the consent page (${response.status})`);
  check(
    (response.headers.get('content-security-policy') ?? '').includes("frame-ancestors 'none'"),
    'the consent page cannot be framed',
  );
  const consent = form(await response.text());
  response = await post(new URL(consent.action || '/oauth/authorize', BASE), [
    ...consent.fields,
    ['decision', decision],
  ]);
  check(response.status === 302 || response.status === 303, `redirected back (${response.status})`);
  const back = new URL(response.headers.get('location'));
  return { back, state, verifier };
}

async function expectGrantError(promise, code) {
  try {
    await promise;
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError && error.error === code) return;
    throw error;
  }
  throw new Error(`expected ${code}`);
}

async function call(token) {
  return (await fetch(PROTECTED, { headers: { authorization: `Bearer ${token}` } })).status;
}

// A revocation reaches the server's verdict cache within its bound (500 ms by default), not
// at once: poll for the refusal, for at most 3 s.
async function refusedSoon(token) {
  const until = Date.now() + 3000;
  while (Date.now() < until) {
    if ((await call(token)) === 401) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

// ---- The flow ------------------------------------------------------------------------------
const issuer = new URL(BASE);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
);
check(as.issuer === BASE, 'the issuer is the canonical base');
check(as.code_challenge_methods_supported?.includes('S256'), 'S256 advertised');
check(as.authorization_response_iss_parameter_supported === true, 'iss advertised');
ok('discovery');

const redirectUri = 'http://127.0.0.1:1/callback';
const client = await oauth.processDynamicClientRegistrationResponse(
  await oauth.dynamicClientRegistrationRequest(
    as,
    {
      redirect_uris: [redirectUri],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      client_name: 'oauth4webapi',
      application_type: 'native',
    },
    insecure,
  ),
);
check(client.client_id, 'a client id');
ok('registration');

const none = oauth.None();
const { back, state, verifier } = await authorize(as, client, redirectUri, 'allow');
const params = oauth.validateAuthResponse(as, client, back, state); // checks `iss`
secrets.push(params.get('code'));
let tokens = await oauth.processAuthorizationCodeResponse(
  as,
  client,
  await oauth.authorizationCodeGrantRequest(as, client, none, params, redirectUri, verifier, {
    additionalParameters: { resource: RESOURCE },
    ...insecure,
  }),
);
secrets.push(tokens.access_token, tokens.refresh_token);
check(tokens.token_type === 'bearer', 'a bearer token');
check(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, 'an integer expires_in');
check(tokens.refresh_token, 'a refresh token');
ok('code+pkce');

check((await call(tokens.access_token)) === 200, 'the protected route admits the token');
ok('protected 200');

const spent = tokens.refresh_token;
const refreshed = await oauth.processRefreshTokenResponse(
  as,
  client,
  await oauth.refreshTokenGrantRequest(as, client, none, spent, {
    additionalParameters: { resource: RESOURCE },
    ...insecure,
  }),
);
secrets.push(refreshed.access_token, refreshed.refresh_token);
check(refreshed.refresh_token !== spent, 'the refresh token rotated');
check((await call(refreshed.access_token)) === 200, 'the refreshed token works');
ok('refresh');

await expectGrantError(
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, none, spent, insecure),
  ),
  'invalid_grant',
);
check(await refusedSoon(refreshed.access_token), 'the family is revoked: its access token');
await expectGrantError(
  oauth.processRefreshTokenResponse(
    as,
    client,
    await oauth.refreshTokenGrantRequest(as, client, none, refreshed.refresh_token, insecure),
  ),
  'invalid_grant',
);
ok('reuse revokes the family');

// A second authorization, for introspection and revocation.
const second = await authorize(as, client, redirectUri, 'allow');
const params2 = oauth.validateAuthResponse(as, client, second.back, second.state);
secrets.push(params2.get('code'));
tokens = await oauth.processAuthorizationCodeResponse(
  as,
  client,
  await oauth.authorizationCodeGrantRequest(as, client, none, params2, redirectUri, second.verifier, {
    additionalParameters: { resource: RESOURCE },
    ...insecure,
  }),
);
secrets.push(tokens.access_token, tokens.refresh_token);

const rs = { client_id: env('INTROSPECT_ID') };
secrets.push(env('INTROSPECT_SECRET'));
const introspected = await oauth.processIntrospectionResponse(
  as,
  rs,
  await oauth.introspectionRequest(
    as,
    rs,
    oauth.ClientSecretBasic(env('INTROSPECT_SECRET')),
    tokens.access_token,
    insecure,
  ),
);
check(introspected.active === true, 'active');
check(introspected.client_id === client.client_id, 'client_id');
check(introspected.aud === RESOURCE || introspected.aud?.includes?.(RESOURCE), 'aud');
check(introspected.iss === BASE, 'iss');
check(introspected.username === env('USER_NAME'), 'username');
check(typeof introspected.exp === 'number' && typeof introspected.iat === 'number', 'exp, iat');
check(typeof introspected.agent_id === 'string', 'agent_id');
check(typeof introspected.agent_type === 'string', 'agent_type');
check(typeof introspected.scope === 'string', 'scope');
if (UNTICK) check(!introspected.scope.split(' ').includes(UNTICK), 'the unticked scope');
ok('introspection');

await oauth.processRevocationResponse(
  await oauth.revocationRequest(as, client, none, tokens.access_token, insecure),
);
check(await refusedSoon(tokens.access_token), 'a revoked token is refused');
ok('revocation');

const denied = await authorize(as, client, redirectUri, 'deny');
check(denied.back.searchParams.get('error') === 'access_denied', 'access_denied');
check(denied.back.searchParams.get('state') === denied.state, 'state');
check(denied.back.searchParams.get('iss') === BASE, 'iss');
ok('deny');

if (process.env.SECRETS_OUT) writeFileSync(process.env.SECRETS_OUT, JSON.stringify(secrets));
