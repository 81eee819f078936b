// A real OpenID provider for the sign-in tests: oidc-provider (panva's,
// certified), on 127.0.0.1, configured as ProConnect behaves: the agent's
// organisation is the `siret` claim, given by the userinfo endpoint as a
// signed JWT (not in the ID token); authorization code flow with PKCE.
//
//   node oidc-provider.mjs
//
// Environment: OIDC_CLIENTS, a JSON list of {client_id, client_secret,
// redirect_uri}; OIDC_ACCOUNTS, a JSON object from login name to SIRET.
// Its built-in login page takes any login and password; the account is the
// login. Listens on a port of 127.0.0.1 the system picks (so that it
// never takes one a test chose for a node), and prints "ready ISSUER".

import { createServer } from "node:http";
import Provider from "oidc-provider";

const clients = JSON.parse(process.env.OIDC_CLIENTS || "[]");
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || "{}");
const server = createServer();
await new Promise((ready) => server.listen(0, "127.0.0.1", ready));
const issuer = `http://127.0.0.1:${server.address().port}`;

const configuration = {
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: [c.redirect_uri],
    post_logout_redirect_uris: [c.redirect_uri.replace(/\/[^/]*\/[^/]*$/, "/")],
    response_types: ["code"],
    grant_types: ["authorization_code"],
    token_endpoint_auth_method: "client_secret_basic",
    id_token_signed_response_alg: "RS256",
    // ProConnect answers userinfo as a signed JWT.
    userinfo_signed_response_alg: "RS256",
  })),
  pkce: { required: () => true },
  scopes: ["openid", "email", "given_name", "usual_name", "siret"],
  claims: {
    openid: ["sub"],
    email: ["email"],
    given_name: ["given_name"],
    usual_name: ["usual_name"],
    siret: ["siret"],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@collectivite.example`,
          given_name: "Camille",
          usual_name: id,
          siret: accounts[id] ?? "",
        };
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  cookies: { keys: ["maillage-test-provider"] },
  ttl: { Session: 3600, Grant: 3600, Interaction: 600, AccessToken: 600, IdToken: 600 },
};

const provider = new Provider(issuer, configuration);
// Loopback over plain HTTP: the provider is told the connection is its own.
provider.proxy = true;
server.on("request", provider.callback());
console.log(`ready ${issuer}`);
