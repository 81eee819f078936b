// Proposals (issue 22), in Debian's chromium: agent-a (Colomiers) proposes
// a project and a dataset through the portal's forms; the moderator
// (Toulouse Métropole, named in [signin] moderators) accepts the project.
// The e2e test `signin::an_agent_proposes_…` started the node and the
// provider, and checks the rest (the published record, a peer, the CLI).
//
//   node proposals.mjs BASE_URL OUT_DIR

import { run, signIn as providerSignIn } from "./common.mjs";

const [base, out] = process.argv.slice(2);
const t = await run(out);
const { context, page } = await t.localPage();
const expect = t.expect;
const step = (name, body) => t.step(page, name, body);
const check = (name) => t.check(page, name);

/** The identity provider's origin: another site than the node's. */
let elsewhere = null;

async function signIn(login, returnTo) {
  elsewhere = await providerSignIn(page, base, login, returnTo);
}

await step("sans-session", async () => {
  // The form asks to sign in first.
  await page.goto(`${base}/propositions/nouvelle?type=projet`);
  expect(page.url().includes("/connexion") || page.url().includes("127.0.0.1"), "no sign-in asked");
  await context.clearCookies();
});

await step("projet", async () => {
  await signIn("agent-a", "/propositions/nouvelle?type=projet");
  await page.getByRole("heading", { level: 1, name: "Proposer un projet d'IA" }).waitFor();
  await check("proposition-formulaire");
  // Sent without its description: the form comes back, what was typed kept.
  await page.getByLabel("Nom du projet").fill("Détection des fuites PROPOSEE");
  await page.getByLabel("Statut").selectOption({ label: "En déploiement" });
  await page.getByLabel("Thème").selectOption({ label: "Transition écologique et énergétique" });
  await page.getByLabel("Latitude").fill("43,6111");
  await page.getByLabel("Longitude").fill("1.3347");
  await page.getByLabel("Description du service rendu").evaluate((e) => e.removeAttribute("required"));
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.getByRole("alert").waitFor();
  expect(
    (await page.getByLabel("Nom du projet").inputValue()) === "Détection des fuites PROPOSEE",
    "the form lost what was typed",
  );
  await page.getByLabel("Description du service rendu").fill("Repère les fuites sur le réseau d'eau.");
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
  await page.getByRole("status").waitFor();
  await page.getByRole("cell", { name: "en attente" }).first().waitFor();
  await check("propositions-agent");
});

await step("jeu", async () => {
  await page.goto(`${base}/propositions/nouvelle?type=jeu`);
  await page.getByLabel("Titre du jeu de données").fill("Jeu REFUSE");
  await page.getByLabel("Description").fill("Un jeu que le modérateur refusera.");
  await page.getByLabel("Mots-clés (séparés par des virgules)").fill("eau, réseau");
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
});

await step("csrf", async () => {
  // A page of another site posts a proposal in the agent's name: its
  // browser sends the session cookie (same host, SameSite=Lax), the node
  // refuses it (no CSRF token, foreign Origin); so it does a decision.
  const csrf = await page.goto(`${base}/propositions/nouvelle?type=jeu`).then(() =>
    page.locator("input[name=csrf]").getAttribute("value"),
  );
  for (const [action, fields] of [
    ["/propositions", { type: "jeu", title: "Jeu CSRF", description: "forgé" }],
    ["/propositions", { type: "jeu", title: "Jeu CSRF", description: "forgé", csrf }],
    ["/deconnexion", { csrf }],
  ]) {
    await page.goto(`${elsewhere}/.well-known/openid-configuration`);
    await page.evaluate(
      ([url, fields]) => {
        const f = document.createElement("form");
        f.method = "post";
        f.action = url;
        for (const [k, v] of Object.entries(fields)) {
          const i = document.createElement("input");
          i.name = k;
          i.value = v;
          f.appendChild(i);
        }
        document.body.appendChild(f);
        f.submit();
      },
      [`${base}${action}`, fields],
    );
    await page.waitForURL((u) => u.href.startsWith(base));
    await page.getByRole("heading", { name: "Demande refusée" }).waitFor();
  }
  await page.goto(`${base}/propositions`);
  const text = await page.locator("body").innerText();
  expect(!text.includes("Jeu CSRF"), "a cross-site form was kept as a proposal");
  expect(text.includes("Mon compte"), "a cross-site form signed the agent out");
});

await step("non-moderateur", async () => {
  // An agent who is no moderator sees no moderation, and a forged
  // decision is refused.
  const text = await page.locator("body").innerText();
  expect(!text.includes("À modérer"), "a non-moderator is shown the moderation");
});

await step("moderation", async () => {
  await context.clearCookies();
  await signIn("moderateur", "/propositions");
  await page.getByRole("heading", { name: "À modérer (2)" }).waitFor();
  await check("propositions-moderateur");
  const proposal = page.getByRole("article").filter({ hasText: "PROPOSEE" });
  await proposal.getByRole("button", { name: "Accepter et publier" }).click();
  await page.waitForURL(`${base}/propositions`);
  await page.getByRole("heading", { name: "À modérer (1)" }).waitFor();
});

await t.end("proposals-report.json");
