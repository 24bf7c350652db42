"""The studio (`stream-animator studio`): one local page for what the commands do.

- `characters`: the folder with `check` verdicts, thumbnails, safe uploads, preparing;
- `clips`: talking clips from text or a recording (the `render` parts, cached between clips);
- `settings`: every config setting from the one registry, validated, saved atomically;
- `live`: a running worker's status and character through its control channel;
- `mark_page`: the marking page's work (starting marks, save, a preview rendered from the bundled clip);
- `jobs`: background jobs with progress and cancel, one at a time per character;
- `app`: the routes on the worker's web server (`worker.web`); the page is `web/static/studio.*`.
"""
