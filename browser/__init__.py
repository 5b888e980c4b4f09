"""The dashboard in a real browser: headless Chromium driven by Playwright against gunicorn (`make test-browser`)."""
