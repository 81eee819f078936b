// Members sign in (issue 22), in Debian's chromium: agents of a commune
// sign in at a real OpenID provider (oidc-provider.mjs) and see what their
// organisation may see; forged cookies, replayed sign-ins and signed-out
// sessions see the public only.
//
//   node signin.mjs BASE_URL OUT_DIR
//
// The node (started by the e2e test `signin::…`) holds a public dataset
// "Jeu PUBLIC", one restricted to Colomiers ("Réservé COLOMIERS"), one to
// Toulouse ("Réservé TOULOUSE") and a federation one ("Réservé
// FEDERATION"); the provider's accounts: agent-a (Colomiers), agent-x (a
// SIRET failing its check), agent-z (a valid SIRET of no known
// organisation). Exits 1 with every problem on stderr.

import { run, signIn as providerSignIn } from "./common.mjs";

const [base, out] = process.argv.slice(2);
const t = await run(out);
const { context, page } = await t.localPage();
const expect = t.expect;
const step = (name, body) => t.step(page, name, body);

/** What the search of every record shows now. */
async function catalogue() {
  await page.goto(`${base}/recherche`);
  return page.locator("body").innerText();
}

/** Signs in at the provider as `login`; resolves once back on the node. */
async function signIn(login, returnTo = "/recherche") {
  await providerSignIn(page, base, login, returnTo);
}

let callback = null;
page.on("request", (r) => {
  if (r.url().startsWith(`${base}/connexion/retour`)) callback = r.url();
});

await step("anonyme", async () => {
  const text = await catalogue();
  expect(text.includes("Jeu PUBLIC"), "the public dataset is not listed");
  for (const hidden of ["COLOMIERS", "TOULOUSE", "FEDERATION"]) {
    expect(!text.includes(hidden), `an anonymous visitor sees ${hidden}`);
  }
  await page.getByRole("link", { name: "Se connecter" }).waitFor();
});

let sessionCookie = null;
await step("connexion", async () => {
  await signIn("agent-a");
  expect(page.url().startsWith(`${base}/recherche`), `back on ${page.url()}, not on the search`);
  const text = await page.locator("body").innerText();
  expect(text.includes("Réservé COLOMIERS"), "agent-a does not see the record restricted to Colomiers");
  expect(!text.includes("TOULOUSE"), "agent-a sees the record restricted to Toulouse");
  expect(!text.includes("FEDERATION"), "agent-a sees a federation record (Colomiers is no member)");
  await page.getByRole("link", { name: /Mon compte \(.*SIREN 213101496\)/ }).waitFor();
  const cookies = await context.cookies(base);
  sessionCookie = cookies.find((c) => c.name === "maillage_session");
  expect(sessionCookie, "no session cookie");
  expect(sessionCookie.httpOnly, "the session cookie is readable by scripts");
  expect(sessionCookie.sameSite === "Lax", `the session cookie is SameSite=${sessionCookie.sameSite}`);
  // The restricted record's own page opens for the agent.
  await page.getByRole("link", { name: "Réservé COLOMIERS" }).click();
  await page.getByRole("heading", { level: 1, name: "Réservé COLOMIERS" }).waitFor();
});

await step("compte", async () => {
  await page.goto(`${base}/compte`);
  await page.getByText("SIRET 21310149600015").waitFor();
  await t.check(page, "compte");
});

await step("rejeu", async () => {
  // The provider's answer, sent again: refused, the session stays.
  expect(callback, "the sign-in's return was not seen");
  const response = await page.goto(callback);
  expect(response.status() === 400, `a replayed sign-in answered ${response.status()}`);
  await page.getByRole("heading", { name: "Connexion inconnue ou expirée" }).waitFor();
});

await step("cookie-altere", async () => {
  // One character of the id changed: the signature no longer holds.
  const [id, tag] = sessionCookie.value.split(".");
  const altered = (id[0] === "A" ? "B" : "A") + id.slice(1);
  await context.clearCookies();
  await context.addCookies([{ ...sessionCookie, value: `${altered}.${tag}` }]);
  const text = await catalogue();
  expect(!text.includes("COLOMIERS"), "an altered cookie still signs in");
  await page.getByRole("link", { name: "Se connecter" }).waitFor();
  await context.clearCookies();
  await context.addCookies([sessionCookie]);
});

await step("deconnexion", async () => {
  await page.goto(`${base}/compte`);
  await page.getByRole("button", { name: "Se déconnecter" }).click();
  await page.waitForURL(`${base}/`);
  let text = await catalogue();
  expect(!text.includes("COLOMIERS"), "still signed in after signing out");
  // The old cookie, put back, names a session that has ended.
  await context.addCookies([sessionCookie]);
  text = await catalogue();
  expect(!text.includes("COLOMIERS"), "a signed-out session's cookie still signs in");
});

await step("siret-invalide", async () => {
  await context.clearCookies();
  await signIn("agent-x");
  await page.getByRole("heading", { name: "SIRET non valide" }).waitFor();
});

await step("organisation-inconnue", async () => {
  await context.clearCookies();
  await signIn("agent-z");
  await page.getByRole("heading", { name: "Organisation inconnue" }).waitFor();
  const text = await catalogue();
  expect(!text.includes("COLOMIERS") && !text.includes("TOULOUSE"), "an unknown organisation's agent sees restricted records");
});

await t.end("signin-report.json");
