// The console's only script of its own (a module, so the Content-Security-Policy needs no
// inline script): marks the page as scripted for GOV.UK Frontend and starts its components.
// htmx and its SSE extension are loaded by the page itself.
import { initAll } from "/assets/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
