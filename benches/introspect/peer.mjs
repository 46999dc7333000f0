// The peer of benches/introspect.sh: oidc-provider, a certified OpenID provider, with token
// introspection (RFC 7662) and its in-memory adapter, on loopback. A resource server client
// authenticates with client_secret_basic and obtains an opaque access token through the
// client_credentials grant; the script checks that introspecting it answers active, then prints
//
//   port <n>
//   client <id> <secret>
//   token <access token>
//
// and serves until killed. `PORT` picks the port (0, the default: any free one).
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const clientId = 'rs';
const clientSecret = randomBytes(32).toString('base64url');
// A signing key of its own, so that the provider does not fall back to its development keys
// (nothing measured is signed: the access token is opaque).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };

const configuration = {
  // No `adapter`: the provider's own in-memory one.
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'api:read',
    },
  ],
  scopes: ['api:read'],
  jwks: { keys: [jwk] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  ttl: { ClientCredentials: 3600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Only a client that authenticates (a resource server) may introspect. What the default
      // policy allows too, without its "you should change this" notice.
      allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
    },
  },
};

const provider = new Provider('http://127.0.0.1', configuration);
const server = provider.listen(Number(process.env.PORT ?? 0), '127.0.0.1');
await new Promise((resolve, reject) => {
  server.once('listening', resolve);
  server.once('error', reject);
});
const { port } = server.address();
const base = `http://127.0.0.1:${port}`;
const basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

async function post(path, form) {
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`${path}: ${response.status} ${JSON.stringify(body)}`);
  }
  return body;
}

const issued = await post('/token', { grant_type: 'client_credentials', scope: 'api:read' });
const introspected = await post('/token/introspection', { token: issued.access_token });
if (introspected.active !== true) {
  throw new Error(`the token does not introspect active: ${JSON.stringify(introspected)}`);
}
console.log(`port ${port}`);
console.log(`client ${clientId} ${clientSecret}`);
console.log(`token ${issued.access_token}`);
