// The device flow (RFC 8628) against `agent-auth serve`, with oauth4webapi: discovery, a client
// registered for the device grant alone, the device authorization, one poll too soon
// (`slow_down`), the person's part — the complete verification URI, sign-in, the user code
// typed into the page, consent — then the next poll on time gets the tokens, and the token
// reads the protected demo API. The device code, once redeemed, is spent.
//
// Run by agent-auth/tests/it/oauth_device.rs, which starts the server and reads what this
// prints: one `ok <step>` line per step; any failure exits non-zero with the reason. Every
// secret it saw (device code, tokens) is written to $SECRETS_OUT, so that the test can look
// for them in the server's log and database.
import { writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { browser, form, value } from './browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE');
const RESOURCE = env('RESOURCE');
const PROTECTED = env('PROTECTED');
const SCOPE = env('SCOPE');
const GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const insecure = { [oauth.allowInsecureRequests]: true };
const secrets = [];
const ok = (step) => console.log(`ok ${step}`);
const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const { browse, post } = browser(BASE, secrets);

const issuer = new URL(BASE);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
);
check(as.device_authorization_endpoint === `${BASE}/oauth/device_authorization`, 'endpoint');
check(as.grant_types_supported?.includes(GRANT), 'the device grant advertised');
ok('discovery');

// A headless client: the device grant and refresh, no redirect URI.
const client = await oauth.processDynamicClientRegistrationResponse(
  await oauth.dynamicClientRegistrationRequest(
    as,
    {
      grant_types: [GRANT, 'refresh_token'],
      token_endpoint_auth_method: 'none',
      client_name: 'oauth4webapi device',
      application_type: 'native',
    },
    insecure,
  ),
);
check(client.client_id, 'a client id');
ok('registration');

const none = oauth.None();
const device = await oauth.processDeviceAuthorizationResponse(
  as,
  client,
  await oauth.deviceAuthorizationRequest(
    as,
    client,
    none,
    { scope: SCOPE, resource: RESOURCE },
    insecure,
  ),
);
secrets.push(device.device_code);
check(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(device.user_code), 'user code');
check(device.verification_uri === `${BASE}/oauth/device`, 'verification_uri');
check(
  device.verification_uri_complete === `${device.verification_uri}?user_code=${device.user_code}`,
  'verification_uri_complete',
);
check(Number.isInteger(device.interval) && device.interval > 0, 'an interval');
check(device.expires_in > 0, 'expires_in');
ok('device authorization');

const grant = () => oauth.deviceCodeGrantRequest(as, client, none, device.device_code, insecure);
async function pollError() {
  const response = await grant();
  const status = response.status;
  try {
    await oauth.processDeviceCodeResponse(as, client, response);
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError) return { status, error: error.error };
    throw error;
  }
  throw new Error('a token before the person answered');
}

// One poll at once, sooner than the interval: slow_down, 400, and the interval grows by 5 s.
const early = await pollError();
check(early.error === 'slow_down' && early.status === 400, `slow_down (${JSON.stringify(early)})`);
const interval = device.interval + 5;
ok('slow_down');

// The person opens the complete URI on another device: signs in, finds the code filled in,
// types it again as people do (lower case, no dash), and allows.
let response = await browse(device.verification_uri_complete);
check(response.status === 302 || response.status === 303, `to sign in (${response.status})`);
const signIn = new URL(response.headers.get('location'), BASE);
check(signIn.pathname === '/login', `the sign-in page (${signIn})`);
const login = form(await (await browse(signIn)).text());
response = await post(new URL('/login', BASE), [
  ...login.fields,
  ['user', env('USER_NAME')],
  ['password', env('PASSWORD')],
]);
check(response.status === 303, `signed in (${response.status})`);
response = await browse(new URL(response.headers.get('location'), BASE));
check(response.status === 200, `the entry page (${response.status})`);
const entryPage = await response.text();
check(value(entryPage, 'user_code') === device.user_code, 'the code filled in');
const entry = form(entryPage);
const typed = device.user_code.toLowerCase().replace('-', '');
response = await post(new URL(entry.action, BASE), [...entry.fields, ['user_code', typed]]);
check(response.status === 200, `the consent page (${response.status})`);
check(
  (response.headers.get('content-security-policy') ?? '').includes("frame-ancestors 'none'"),
  'the consent page cannot be framed',
);
const consentPage = await response.text();
check(consentPage.includes(device.user_code), 'the consent page shows the code');
const consent = form(consentPage);
response = await post(new URL(consent.action, BASE), [...consent.fields, ['decision', 'allow']]);
const done = await response.text();
check(response.status === 200 && done.includes('Device connected'), `allowed (${response.status})`);
ok('user code entered');

// The next poll, on time: the tokens.
await sleep(interval * 1000 + 250);
const tokens = await oauth.processDeviceCodeResponse(as, client, await grant());
secrets.push(tokens.access_token, tokens.refresh_token);
check(tokens.token_type === 'bearer', 'a bearer token');
check(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0, 'an integer expires_in');
check(tokens.refresh_token, 'a refresh token');
check(tokens.scope === SCOPE, `the scope allowed (${tokens.scope})`);
ok('token');

const status = (await fetch(PROTECTED, { headers: { authorization: `Bearer ${tokens.access_token}` } }))
  .status;
check(status === 200, `the protected route admits the token (${status})`);
ok('protected 200');

// Spent: presented again, invalid_grant.
const again = await pollError();
check(again.error === 'invalid_grant' && again.status === 400, `single use (${JSON.stringify(again)})`);
ok('single use');

if (process.env.SECRETS_OUT) writeFileSync(process.env.SECRETS_OUT, JSON.stringify(secrets));
