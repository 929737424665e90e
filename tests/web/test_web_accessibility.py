"""Every main page, as rendered in Chromium: a language, one h1, labelled controls, named buttons and
charts, text contrast of at least WCAG AA, and no control that the keyboard cannot reach."""

from __future__ import annotations

import pytest

from support.browser import Browser

pytestmark = pytest.mark.devcloud

PAGES = (
    "/ui/",
    "/ui/charts",
    "/ui/instances",
    "/ui/instances/new",
    "/ui/students",
    "/ui/courses",
    "/ui/reconciliation",
    "/ui/roster",
    "/ui/exports",
    "/ui/exports/retention",
    "/ui/inventory",
)

# What a page must not have; each entry is a description of one problem, empty when the page is fine.
AUDIT = r"""
const problems = [];
if (!document.documentElement.lang) problems.push('no lang on <html>');
const h1s = document.querySelectorAll('h1');
if (h1s.length !== 1) problems.push(h1s.length + ' h1 elements');
for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
  const named = (el.labels && el.labels.length) || el.getAttribute('aria-label')
    || el.getAttribute('aria-labelledby');
  if (!named) problems.push('unlabelled ' + el.tagName + ' ' + (el.name || el.id));
  if (el.tabIndex < 0) problems.push('not reachable by keyboard: ' + (el.name || el.id));
}
for (const el of document.querySelectorAll('button, a[href]')) {
  const name = (el.getAttribute('aria-label') || el.textContent || '').trim();
  if (!name) problems.push('unnamed ' + el.tagName + ' ' + el.outerHTML.slice(0, 80));
}
for (const svg of document.querySelectorAll('svg')) {
  if (svg.getAttribute('role') !== 'img' || !svg.querySelector('title')) {
    problems.push('svg without role=img and a title');
  }
}
// WCAG 2 contrast of every element's own text against the first opaque background behind it.
const rgb = (text) => (text.match(/[\d.]+/g) || []).map(Number);
const luminance = ([r, g, b]) => {
  const lin = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
for (const el of document.querySelectorAll('body *:not(svg):not(svg *)')) {
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  const style = getComputedStyle(el);
  const shown = style.visibility !== 'hidden' && style.display !== 'none' && el.getClientRects().length;
  if (!own || !shown) continue;
  let back = null;
  for (let a = el; a && !back; a = a.parentElement) {
    const c = rgb(getComputedStyle(a).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) back = c;
  }
  back = back || [255, 255, 255];
  const [l1, l2] = [luminance(rgb(style.color)), luminance(back)].sort((x, y) => y - x);
  const ratio = (l1 + 0.05) / (l2 + 0.05);
  const size = parseFloat(style.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  if (ratio < (large ? 3 : 4.5)) {
    const text = el.textContent.trim().slice(0, 30);
    problems.push('contrast ' + ratio.toFixed(2) + ' of ' + el.tagName + ' "' + text + '"');
  }
}
const ids = {};
for (const el of document.querySelectorAll('[id]')) {
  if (ids[el.id]) problems.push('duplicate id ' + el.id);
  ids[el.id] = true;
}
return problems;
"""


@pytest.mark.parametrize("path", PAGES)
def test_the_page_is_labelled_and_keyboard_reachable(admin_browser: Browser, path: str) -> None:
    admin_browser.open(path)
    admin_browser.wait_for("main h1")
    problems = admin_browser.driver.execute_script(AUDIT)
    assert problems == [], f"{path}: {problems}"


def test_the_audit_itself_finds_problems(admin_browser: Browser) -> None:
    admin_browser.open("/ui/roster")
    admin_browser.wait_for("main h1")
    admin_browser.driver.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<h1>two</h1><input name=stray><button></button><svg></svg><p id=file></p>"
        '<p style="color: #bbbbbb">faint</p>\')'
    )
    problems = admin_browser.driver.execute_script(AUDIT)
    assert "2 h1 elements" in problems and "unlabelled INPUT stray" in problems
    assert "svg without role=img and a title" in problems and "duplicate id file" in problems
    assert any(p.startswith("unnamed BUTTON") for p in problems)
    assert any(p.startswith("contrast ") and p.endswith('of P "faint"') for p in problems), problems
