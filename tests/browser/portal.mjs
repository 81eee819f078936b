// The portal in a real browser (issue 21): Debian's chromium, headless,
// driven by playwright-core, every page type checked with axe-core.
//
// Run by the e2e test `portal::a_visitor_in_a_real_browser`, which starts a
// node with the records this script expects, then imports the CSV this
// script downloads into a second node.
//
//   node portal.mjs BASE_URL OUT_DIR
//
// Writes OUT_DIR/<page>.png (one screenshot per page type),
// OUT_DIR/projets.csv, OUT_DIR/pistes.maillage (a downloaded envelope) and
// OUT_DIR/report.json (what axe found on each page, at every impact).
// Exits 1 with every problem listed on stderr: a serious or critical
// accessibility violation, a script error, a request to anywhere but the
// node and the map's tiles, a hidden record shown, a step that fails.

import { join } from "node:path";

import { run } from "./common.mjs";

const [base, out] = process.argv.slice(2);
if (!base || !out) {
  console.error("usage: node portal.mjs BASE_URL OUT_DIR");
  process.exit(2);
}
const t = await run(out);
const { problems, browser } = t;

// The tiles' host as the node's default configuration names it; answered
// here with a plain grey tile, since tests reach nothing but 127.0.0.1.
const TILES = /^https:\/\/data\.geopf\.fr\//;
const BLANK_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGN49+4FAAWSAsUs0TWTAAAAAElFTkSuQmCC",
  "base64",
);

// The page that answers 404 on purpose: the browser logs its status.
let expected404 = null;
let tilesServed = 0;

const context = await browser.newContext({
  locale: "fr-FR",
  acceptDownloads: true,
  viewport: { width: 1280, height: 900 },
});
await context.route("**/*", (route) => {
  const url = route.request().url();
  if (url.startsWith(base)) {
    return route.continue();
  }
  if (TILES.test(url)) {
    tilesServed += 1;
    return route.fulfill({ contentType: "image/png", body: BLANK_PNG });
  }
  problems.push(`a page asked for ${url}: the portal loads nothing from elsewhere`);
  return route.abort();
});
const page = await context.newPage();
page.on("console", (m) => {
  // Content-Security-Policy refusals are reported here too.
  const missing = m.text().includes("status of 404") && m.location().url === expected404;
  if (m.type() === "error" && !missing) problems.push(`console error on ${page.url()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
page.on("dialog", (d) => {
  problems.push(`a dialog opened on ${page.url()} ("${d.message()}"): a value ran as a script`);
  d.dismiss();
});

const expect = t.expect;
const step = (name, body) => t.step(page, name, body);

/** axe-core and a screenshot (`common.mjs`), and no hidden record on the
 * page. */
async function check(name) {
  const text = await page.locator("body").innerText();
  for (const hidden of ["SECRET-FEDERATION", "SECRET-RESTREINT"]) {
    if (text.includes(hidden)) problems.push(`${name} (${page.url()}) shows ${hidden} to an anonymous visitor`);
  }
  await t.check(page, name);
}

await step("accueil", async () => {
  const response = await page.goto(`${base}/`);
  expect(response.status() === 200, `home answered ${response.status()}`);
  expect((await page.locator("html").getAttribute("lang")) === "fr", "the home page is not lang=fr");
  await check("accueil");
  // Keyboard: the first Tab reaches the skip link, which leads to the content.
  await page.keyboard.press("Tab");
  const first = await page.evaluate(() => document.activeElement.textContent.trim());
  expect(first === "Aller au contenu", `the first Tab reaches '${first}', not the skip link`);
  await page.keyboard.press("Enter");
  const focused = await page.evaluate(() => document.activeElement.id);
  expect(focused === "contenu", `the skip link leads to '#${focused}', not the content`);
  // A search typed in the box, sent with the keyboard.
  await page.getByLabel("Rechercher dans le catalogue").fill("pistes");
  await page.getByLabel("Rechercher dans le catalogue").press("Enter");
  await page.waitForURL(/\/recherche\?q=pistes/);
});

await step("recherche", async () => {
  await page.getByText("1 résultat", { exact: false }).first().waitFor();
  // The hostile title is text, not markup.
  await page.getByRole("link", { name: "Pistes cyclables <script>alert(1)</script>" }).waitFor();
  await check("recherche");
  // Every record, then a facet: datasets only.
  await page.getByRole("navigation", { name: "Menu principal" }).getByRole("link", { name: "Rechercher" }).click();
  await page.waitForURL(/\/recherche$/);
  const facets = page.getByRole("complementary", { name: "Affiner la recherche" });
  await facets.getByRole("link", { name: "Jeu de données", exact: true }).click();
  await page.waitForURL(/kind=dataset/);
  const kinds = await page.locator("ol.resultats > li .meta").allInnerTexts();
  expect(kinds.length > 0, "the dataset facet lists nothing");
  expect(
    kinds.every((k) => k.includes("Jeu de données")),
    `the dataset facet lists other kinds: ${JSON.stringify(kinds)}`,
  );
  await page.getByRole("link", { name: "Pistes cyclables <script>alert(1)</script>" }).click();
  await page.waitForURL(/\/records\/[0-9a-f]{64}\/pistes-cyclables$/);
});

await step("enregistrement", async () => {
  const signature = page.locator("section.signature");
  await signature.getByText("signature vérifiée").first().waitFor();
  await check("enregistrement");
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    signature.getByRole("link", { name: /enveloppe signée/i }).click(),
  ]);
  await download.saveAs(join(out, "pistes.maillage"));
  await signature.getByRole("link", { name: "Toulouse Métropole" }).click();
  await page.waitForURL(/\/organisations\/243100518$/);
});

await step("organisation", async () => {
  await page.getByRole("heading", { level: 1, name: "Toulouse Métropole" }).waitFor();
  await page.getByRole("heading", { name: "Registre des algorithmes et projets d'IA" }).waitFor();
  await check("organisation");
  await page.getByRole("link", { name: "Haute-Garonne (31)" }).click();
  await page.waitForURL(/\/territoires\/31$/);
});

await step("territoire", async () => {
  await page.getByRole("heading", { level: 1, name: "Haute-Garonne (31)" }).waitFor();
  await page.getByText("Tri automatique des courriers entrants").first().waitFor();
  await check("territoire");
});

await step("carte", async () => {
  await page.getByRole("navigation", { name: "Menu principal" }).getByRole("link", { name: "Carte des projets" }).click();
  await page.waitForURL(/\/carte$/);
  const listed = await page.locator("li[data-lat]").count();
  expect(listed === 2, `the map lists ${listed} projects, not 2`);
  // The script drew one marker per project, over the tiles.
  await page.waitForFunction(
    (n) => document.querySelectorAll("#carte path.leaflet-interactive").length === n,
    listed,
    { timeout: 10_000 },
  );
  await page.waitForFunction(() => document.querySelectorAll("#carte img.leaflet-tile-loaded").length > 0);
  expect(tilesServed > 0, "the map asked for no tile");
  // A marker opens a popup that links to its project.
  await page.locator("#carte path.leaflet-interactive").first().click({ force: true });
  await page.locator(".leaflet-popup-content a").waitFor();
  await check("carte");
  // Filtering works without the script: a status no project has.
  await page.getByLabel("Statut").selectOption({ label: "Abandonné" });
  await page.getByRole("button", { name: "Filtrer" }).click();
  await page.waitForURL(/status=/);
  await page.getByRole("heading", { name: "Aucun projet situé" }).waitFor();
  await page.goBack();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "CSV (format de la bibliothèque des projets IA)" }).click(),
  ]);
  await download.saveAs(join(out, "projets.csv"));
});

await step("introuvable", async () => {
  expected404 = `${base}/nulle-part`;
  const response = await page.goto(expected404);
  expect(response.status() === 404, `/nulle-part answered ${response.status()}`);
  await page.getByRole("heading", { level: 1, name: "Page introuvable" }).waitFor();
  await check("introuvable");
});

console.log(`tiles served: ${tilesServed}`);
await t.end("report.json");
