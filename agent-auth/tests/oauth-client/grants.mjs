// Drives `agent-auth serve`'s grants for agents with oauth4webapi: client credentials (an agent
// holding a client secret), token exchange (RFC 8693: a sub-agent's narrower child of its
// parent's token) and the "Agent Tokens" endpoint (`POST /oauth/agent-token`, an orchestrator's
// task token with a use limit), with introspection after each.
//
// Run by agent-auth/tests/it/oauth_grants.rs, which sets up the agents and secrets with the CLI
// and reads what this prints: one `ok <step>` line per step; any failure exits non-zero with the
// reason. Every secret it saw is written to $SECRETS_OUT, so that the test can look for them in
// the server's log and database.
import { writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE');
const RESOURCE = env('RESOURCE');
const PROTECTED = env('PROTECTED');
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const insecure = { [oauth.allowInsecureRequests]: true };
const secrets = [env('PLANNER_SECRET'), env('CONDUCTOR_SECRET'), env('ACTOR_TOKEN'), env('INTROSPECT_SECRET')];
const ok = (step) => console.log(`ok ${step}`);
const check = (condition, what) => {
  if (!condition) throw new Error(`check failed: ${what}`);
};

async function call(token, method = 'GET') {
  return (await fetch(PROTECTED, { method, headers: { authorization: `Bearer ${token}` } })).status;
}

// ---- Discovery -----------------------------------------------------------------------------
const issuer = new URL(BASE);
const as = await oauth.processDiscoveryResponse(
  issuer,
  await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
);
for (const grant of [TOKEN_EXCHANGE, 'client_credentials']) {
  check(as.grant_types_supported?.includes(grant), `${grant} advertised`);
}
ok('discovery');

const rs = { client_id: env('INTROSPECT_ID') };
async function introspect(token) {
  return oauth.processIntrospectionResponse(
    as,
    rs,
    await oauth.introspectionRequest(
      as,
      rs,
      oauth.ClientSecretBasic(env('INTROSPECT_SECRET')),
      token,
      insecure,
    ),
  );
}

// ---- Client credentials: the planner agent's own token -------------------------------------
const planner = { client_id: 'planner' };
const plannerAuth = oauth.ClientSecretBasic(env('PLANNER_SECRET'));
const own = await oauth.processClientCredentialsResponse(
  as,
  planner,
  await oauth.clientCredentialsGrantRequest(
    as,
    planner,
    plannerAuth,
    { scope: 'posts:read posts:write', resource: RESOURCE },
    insecure,
  ),
);
secrets.push(own.access_token);
check(own.token_type === 'bearer', 'a bearer token');
check(Number.isInteger(own.expires_in) && own.expires_in > 0, 'an integer expires_in');
check(own.refresh_token === undefined, 'no refresh token');
check(own.scope === 'posts:read posts:write', `the scope asked (${own.scope})`);
check((await call(own.access_token)) === 200, 'the protected route admits it');
ok('client credentials 200');

// ---- Token exchange: a narrower child for the writer sub-agent -----------------------------
const child = await oauth.processGenericTokenEndpointResponse(
  as,
  planner,
  await oauth.genericTokenEndpointRequest(
    as,
    planner,
    plannerAuth,
    TOKEN_EXCHANGE,
    {
      subject_token: own.access_token,
      subject_token_type: ACCESS_TOKEN,
      actor_token: env('ACTOR_TOKEN'),
      actor_token_type: ACCESS_TOKEN,
      scope: 'posts:read',
      resource: RESOURCE,
    },
    insecure,
  ),
);
secrets.push(child.access_token);
check(child.issued_token_type === ACCESS_TOKEN, 'issued_token_type');
check(child.token_type === 'bearer', 'token_type Bearer');
check(child.scope === 'posts:read', 'the narrower scope');
check(child.access_token.includes('_writer_'), "the actor's token");
check((await call(child.access_token)) === 200, 'the narrower route admits the child');
check((await call(child.access_token, 'POST')) === 403, 'the wider route refuses it');
ok('token exchange narrower 200, wider 403');

const seen = await introspect(child.access_token);
check(seen.active === true, 'active');
check(seen.act?.sub === seen.agent_id, 'act: the acting sub-agent outermost');
check(typeof seen.act?.act?.sub === 'string' && seen.act.act.sub !== seen.act.sub, 'act: the parent nested');
check(seen.delegation_chain?.[0] === seen.act.act.sub, 'the chain and act agree');
check(seen.client_id === 'planner', 'client_id');
check(seen.aud === RESOURCE, 'aud');
ok('introspection shows act');

// A wider exchange is refused with the RFC's code.
const wider = await oauth.genericTokenEndpointRequest(
  as,
  planner,
  plannerAuth,
  TOKEN_EXCHANGE,
  { subject_token: child.access_token, subject_token_type: ACCESS_TOKEN, scope: 'posts:write' },
  insecure,
);
try {
  await oauth.processGenericTokenEndpointResponse(as, planner, wider);
  throw new Error('a wider exchange was answered');
} catch (error) {
  check(error instanceof oauth.ResponseBodyError && error.error === 'invalid_scope', `invalid_scope (${error})`);
}
ok('wider exchange invalid_scope');

// ---- The "Agent Tokens" endpoint: an orchestrator's task token, 3 operations --------------
const response = await fetch(new URL('/oauth/agent-token', BASE), {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    client_id: 'conductor',
    client_secret: env('CONDUCTOR_SECRET'),
    delegated_by_user_id: env('USER_NAME'),
    agent: 'worker',
    agent_type: 'autonomous',
    scope: 'posts:read',
    task_id: 'grants-test-1',
    max_operations: '3',
    expires_on_completion: 'true',
    intent_description: 'read the posts three times',
  }).toString(),
});
check(response.status === 200, `agent-token 200 (${response.status})`);
check(response.headers.get('cache-control') === 'no-store', 'not stored');
const task = await response.json();
secrets.push(task.access_token);
check(task.token_type === 'Bearer', 'token_type');
check(task.expires_in > 0 && task.expires_in <= 900, `15 minutes at most (${task.expires_in})`);
check(task.scope === 'posts:read', 'scope');
check(task.agent_type === 'autonomous', 'agent_type');
check(task.task_id === 'grants-test-1', 'task_id');
check(task.max_operations === 3, 'max_operations');
check(task.expires_on_completion === true, 'expires_on_completion');
ok('agent-token');

check((await introspect(task.access_token)).operations_remaining === 3, 'three operations left');
const statuses = [];
for (let i = 0; i < 4; i += 1) {
  statuses.push(await call(task.access_token));
  if (i === 0) {
    const after = await introspect(task.access_token);
    check(after.operations_remaining === 2, `two left after one (${after.operations_remaining})`);
    check(after.task_id === 'grants-test-1' && after.delegated_by === env('USER_NAME'), 'task fields');
    check(typeof after.orchestrator_id === 'string', 'orchestrator_id');
  }
}
check(JSON.stringify(statuses) === '[200,200,200,401]', `exactly 3 admitted, then 401 (${statuses})`);
check((await introspect(task.access_token)).active === false, 'inactive once spent');
ok('agent-token 3 admitted then 401');

if (process.env.SECRETS_OUT) writeFileSync(process.env.SECRETS_OUT, JSON.stringify(secrets));
