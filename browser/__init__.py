"""The dashboard in a real browser: headless Chromium driven by Playwright against uvicorn (`make test-browser`)."""
