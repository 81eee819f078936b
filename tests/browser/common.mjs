// What the browser tests share: Debian's chromium launched headless, the
// steps that collect problems instead of stopping at the first, axe-core's
// check of a page, and signing in at the test's OpenID provider.

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** A test run writing into `out`: its problems, its report, its browser. */
export async function run(out) {
  mkdirSync(out, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.MAILLAGE_CHROMIUM || "/usr/bin/chromium",
    // CI runs as root, where chromium refuses its sandbox.
    args: ["--no-sandbox"],
  });
  const t = { out, browser, problems: [], report: {} };

  /** A French browser context that reaches 127.0.0.1 only (the test
   * provider's own pages load a web font) and a page of it whose script
   * errors are problems. */
  t.localPage = async () => {
    const context = await browser.newContext({ locale: "fr-FR" });
    await context.route(/^https?:\/\/(?!127\.0\.0\.1)/, (route) => route.abort());
    const page = await context.newPage();
    page.on("pageerror", (e) => t.problems.push(`script error on ${page.url()}: ${e.message}`));
    return { context, page };
  };

  /** Fails the current step. */
  t.expect = (ok, what) => {
    if (!ok) throw new Error(what);
  };

  /** Runs a step; a failure is noted (with a screenshot) and the next
   * step runs. */
  t.step = async (page, name, body) => {
    try {
      await body();
    } catch (e) {
      t.problems.push(`${name}: ${e.message.split("\n")[0]}`);
      await page.screenshot({ path: join(out, `echec-${name}.png`), fullPage: true }).catch(() => {});
    }
  };

  /** axe-core on the page (WCAG 2.1 A/AA and best practices): a serious or
   * critical violation is a problem; every one is in the report. Then a
   * screenshot named `name`. */
  t.check = async (page, name) => {
    await page.evaluate(axeSource);
    const result = await page.evaluate(() =>
      // eslint-disable-next-line no-undef
      axe.run(document, {
        runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
      }),
    );
    t.report[name] = {
      url: page.url(),
      violations: result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.join(" ")),
      })),
      passes: result.passes.length,
    };
    for (const v of result.violations) {
      if (v.impact === "serious" || v.impact === "critical") {
        const where = v.nodes.map((n) => n.target.join(" ")).join(", ");
        t.problems.push(`${name} (${page.url()}): ${v.impact} accessibility violation '${v.id}' (${v.help}) at ${where}`);
      }
    }
    await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
  };

  /** Closes the browser, writes the report, says what axe found, and exits
   * 1 with every problem if there is one. */
  t.end = async (reportName) => {
    await t.browser.close();
    writeFileSync(join(out, reportName), JSON.stringify({ pages: t.report, problems: t.problems }, null, 2));
    for (const [name, r] of Object.entries(t.report)) {
      const impacts = r.violations.map((v) => `${v.id} (${v.impact})`).join(", ") || "none";
      console.log(`${name}: ${r.passes} axe rules passed; violations: ${impacts}`);
    }
    if (t.problems.length > 0) {
      console.error(t.problems.join("\n"));
      process.exit(1);
    }
  };
  return t;
}

/** Signs in at the test's provider (oidc-provider.mjs: any password, the
 * login is the account) and comes back to the node at `returnTo`. Returns
 * the provider's origin (another site than the node's). */
export async function signIn(page, base, login, returnTo) {
  await page.goto(`${base}/connexion?retour=${encodeURIComponent(returnTo)}`);
  await page.locator("input[name=login]").waitFor();
  const provider = new URL(page.url()).origin;
  await page.locator("input[name=login]").fill(login);
  await page.locator("input[name=password]").fill("mot-de-passe");
  await page.locator("button[type=submit]").click();
  // The provider asks for consent the first time.
  const consent = page.getByRole("button", { name: "Continue" });
  await Promise.race([
    consent.waitFor({ timeout: 10_000 }).then(() => consent.click()),
    page.waitForURL((u) => u.href.startsWith(base), { timeout: 10_000 }),
  ]).catch(() => {});
  await page.waitForURL((u) => u.href.startsWith(base), { timeout: 10_000 });
  return provider;
}
