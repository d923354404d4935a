import { html, Page } from "../lib/ui.js";

export default function NotFound() {
  return html`<${Page} title="Page not found">
    <p>There is no page at <code>${location.pathname}</code>. <a href="/ui" data-route>Back to the dashboard</a>.</p>
  <//>`;
}
