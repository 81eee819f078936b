// Proposals (issue 22), in Debian's chromium: agent-a (Colomiers) proposes
// a project and a dataset through the portal's forms; the moderator
// (Toulouse Métropole, named in [signin] moderators) accepts the project.
// The e2e test `signin::an_agent_proposes_…` started the node and the
// provider, and checks the rest (the published record, a peer, the CLI).
//
//   node proposals.mjs BASE_URL OUT_DIR

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [base, out] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const problems = [];
const report = {};

const browser = await chromium.launch({
  executablePath: process.env.MAILLAGE_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const context = await browser.newContext({ locale: "fr-FR" });
await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
const page = await context.newPage();
page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));

function expect(ok, what) {
  if (!ok) throw new Error(what);
}

async function step(name, run) {
  try {
    await run();
  } catch (e) {
    problems.push(`${name}: ${e.message.split("\n")[0]}`);
    await page.screenshot({ path: join(out, `echec-${name}.png`), fullPage: true }).catch(() => {});
  }
}

async function check(name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } }),
  );
  report[name] = result.violations.map((v) => `${v.id} (${v.impact})`);
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") {
      problems.push(`${name}: ${v.impact} accessibility violation '${v.id}' (${v.help})`);
    }
  }
  await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
}

/** The identity provider's origin: another site than the node's. */
let elsewhere = null;

async function signIn(login, returnTo) {
  await page.goto(`${base}/connexion?retour=${encodeURIComponent(returnTo)}`);
  await page.locator("input[name=login]").waitFor();
  elsewhere = new URL(page.url()).origin;
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("mot-de-passe");
  await page.locator("button[type=submit]").click();
  const consent = page.getByRole("button", { name: "Continue" });
  await Promise.race([
    consent.waitFor({ timeout: 10_000 }).then(() => consent.click()),
    page.waitForURL((u) => u.href.startsWith(base), { timeout: 10_000 }),
  ]).catch(() => {});
  await page.waitForURL((u) => u.href.startsWith(base), { timeout: 10_000 });
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

await browser.close();
writeFileSync(join(out, "proposals-report.json"), JSON.stringify({ report, problems }, null, 2));
for (const [name, v] of Object.entries(report)) console.log(`${name}: axe violations: ${v.join(", ") || "none"}`);
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
