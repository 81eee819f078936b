// Proposals (issue 22), in Debian's chromium. agent-a (Colomiers) proposes
// a project and two datasets through the portal's forms, amends the
// project while it waits; the moderator (named in [signin] moderators)
// accepts the project and one dataset. agent-a then proposes the project's
// details, an edit of the project and the dataset's withdrawal; the
// moderator accepts all three. The e2e test `signin::an_agent_proposes_…`
// started the node and the provider, and checks the rest (the published
// records, a peer, the CLI).
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

async function proposeDataset(title) {
  await page.goto(`${base}/propositions/nouvelle?type=jeu`);
  await page.getByLabel("Titre du jeu de données").fill(title);
  await page.getByLabel("Description").fill(`Le jeu ${title}.`);
  await page.getByLabel("Mots-clés (séparés par des virgules)").fill("eau, réseau");
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
  return new URL(page.url()).searchParams.get("envoyee");
}

let refusedId = null;
await step("jeu", async () => {
  refusedId = await proposeDataset("Jeu REFUSE");
  await proposeDataset("Jeu RETIRE");
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
  // An agent who is no moderator sees no moderation, and a decision it
  // forges from this very site, with its CSRF token, is refused.
  await page.goto(`${base}/propositions`);
  const text = await page.locator("body").innerText();
  expect(!text.includes("À modérer"), "a non-moderator is shown the moderation");
  const csrf = await page.locator("input[name=csrf]").first().getAttribute("value");
  const status = await page.evaluate(
    async ([url, csrf]) =>
      (
        await fetch(url, {
          method: "POST",
          body: new URLSearchParams({ csrf, decision: "accepter" }),
          redirect: "manual",
        })
      ).status,
    [`${base}/propositions/${refusedId}/decision`, csrf],
  );
  expect(status === 403, `a non-moderator's decision got ${status}, not 403`);
  // The members view is the node's own agents' and its moderators'.
  const members = await page.goto(`${base}/membres`);
  expect(members.status() === 403, `the members view answered ${members.status()} to another organisation's agent`);
});

await step("amendement", async () => {
  // The project waits: agent-a amends it; it stays one proposal.
  await page.goto(`${base}/propositions`);
  await page.getByRole("link", { name: "Modifier la proposition « Détection des fuites PROPOSEE »" }).click();
  await page.getByLabel("Description du service rendu").fill("Repère les fuites sur le réseau d'eau potable.");
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?modifiee=/);
  const rows = await page.getByRole("cell", { name: "Détection des fuites PROPOSEE", exact: true }).count();
  expect(rows === 1, `the amended project shows ${rows} times`);
  await page.getByRole("status").filter({ hasText: "est modifiée" }).waitFor();
  // A proposal its organisation cancels is gone.
  await proposeDataset("Jeu ANNULE");
  await page.getByRole("button", { name: "Annuler la proposition « Jeu ANNULE »" }).click();
  await page.getByRole("status").filter({ hasText: "annulée" }).waitFor();
  const left = await page.getByRole("cell", { name: "Jeu ANNULE", exact: true }).count();
  expect(left === 0, "a cancelled proposal is still listed");
});

/** As the moderator: accepts each [title, button], then `after` wait. */
async function moderate(accept, after) {
  for (const [title, button] of accept) {
    const proposal = page.getByRole("article").filter({ hasText: title });
    await proposal.getByRole("button", { name: button }).click();
    await page.waitForURL(`${base}/propositions`);
  }
  await page.getByRole("heading", { name: `À modérer (${after})` }).waitFor();
}

await step("moderation", async () => {
  await context.clearCookies();
  await signIn("moderateur", "/propositions");
  await page.getByRole("heading", { name: "À modérer (3)" }).waitFor();
  await check("propositions-moderateur");
  const text = await page.locator("body").innerText();
  expect(text.includes("réseau d'eau potable"), "the moderator sees the proposal before its amendment");
  await moderate([["PROPOSEE", "Accepter et publier"], ["Jeu RETIRE", "Accepter et publier"]], 1);
});

await step("details", async () => {
  await context.clearCookies();
  await signIn("agent-a", "/propositions");
  const published = page.getByRole("region", { name: "Publiés par ce nœud pour votre organisation" });
  await published.getByRole("link", { name: "Jeu RETIRE" }).waitFor();
  await published.getByRole("listitem").filter({ hasText: "PROPOSEE" }).getByRole("link", { name: "Détails du projet" }).click();
  await page.getByRole("heading", { level: 1, name: "Proposer les détails d'un projet" }).waitFor();
  await check("proposition-details");
  await page.getByLabel("Contact : adresse électronique").fill("sig@colomiers.example");
  await page.getByLabel("Financement").fill("Fonds propres DETAILS");
  await page.getByLabel("Budget").selectOption({ label: "Moins de 50 k€" });
  await page.getByLabel("Apprentissage automatique").check();
  await page.getByLabel("Vision par ordinateur").check();
  await page.getByLabel("Votre organisation seulement").check();
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
});

await step("modification", async () => {
  // From the record's page: the agent's organisation may change it.
  await page.getByRole("region", { name: "Publiés par ce nœud pour votre organisation" })
    .getByRole("link", { name: "Détection des fuites PROPOSEE" }).click();
  await page.getByRole("region", { name: "Votre organisation" })
    .getByRole("link", { name: "Proposer une modification" }).click();
  const name = page.getByLabel("Nom du projet");
  expect((await name.inputValue()) === "Détection des fuites PROPOSEE", "the edit form is not filled with the record");
  await name.fill("Détection des fuites MODIFIEE");
  await page.getByRole("button", { name: "Envoyer la proposition" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
});

await step("retrait", async () => {
  await page.getByRole("region", { name: "Publiés par ce nœud pour votre organisation" })
    .getByRole("listitem").filter({ hasText: "Jeu RETIRE" })
    .getByRole("link", { name: "Proposer le retrait" }).click();
  await page.getByLabel("Raison du retrait").fill("jeu remplacé");
  await check("proposition-retrait");
  await page.getByRole("button", { name: "Proposer le retrait" }).click();
  await page.waitForURL(/\/propositions\?envoyee=/);
});

await step("moderation-suite", async () => {
  await context.clearCookies();
  await signIn("moderateur", "/propositions");
  await page.getByRole("heading", { name: "À modérer (4)" }).waitFor();
  const edit = page.getByRole("article").filter({ hasText: "MODIFIEE" });
  const text = await edit.innerText();
  expect(text.includes("modifie la version 1"), `the edit does not say what it changes: ${text}`);
  expect(/Champs modifiés : [^\n]*Nom/.test(text), `the edit does not list the name as changed: ${text}`);
  await check("propositions-moderateur-suite");
  await page.getByRole("link", { name: "Les membres de ce nœud" }).click();
  await page.getByRole("heading", { level: 1, name: "Membres" }).waitFor();
  await page.getByRole("cell", { name: "Colomiers", exact: true }).waitFor();
  await check("membres");
  await page.goto(`${base}/propositions`);
  await moderate([
    ["Fonds propres DETAILS", "Accepter et publier"],
    ["MODIFIEE", "Accepter et publier"],
    ["jeu remplacé", "Accepter et retirer"],
  ], 1);
});

await t.end("proposals-report.json");
