// A real OpenID provider for the auth_oidc tests: the OpenID-certified `oidc-provider`,
// on loopback, with one client and static accounts.
//
//   node provider.mjs --port 10123 --state /tmp/x/state.json
//
// state.json holds {"client": {...client metadata...}, "accounts": {"<login>": {claims}}}.
// The client is read once at start; the accounts at every lookup, so a test changes
// a person's claims (email_verified, groups, department…) by rewriting the file.
// devInteractions gives the login form (any password; the login must be an account
// of the file) and the consent form that a browser or an HTTP client fills in.
// PKCE is required of every client, so a sign-in without it fails here as it should.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: { port: { type: 'string' }, state: { type: 'string' } },
});
const port = Number(args.port);
const readState = () => JSON.parse(readFileSync(args.state, 'utf8'));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [readState().client],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  // Each scope and the claims it gives; the last two are the test's own.
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
    department: ['department'],
  },
  async findAccount(ctx, id) {
    const claims = readState().accounts[id];
    if (!claims) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...claims }) };
  },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
