"""Every hook a ClipSync plugin can implement.

Each specification states its arguments and its contract; `docs/plugins.md` documents
the same hooks for plugin authors, and a test checks the two agree. Hooks are called
with keyword arguments, and an implementation may accept fewer arguments than the
specification lists.

Four kinds of hook:

- `register_*` hooks return a list; the core gathers every plugin's list into a
  registry and refuses two entries with the same name.
- Decide hooks (`firstresult=True`, e.g. `validate_upload`) stop at the first
  implementation that returns something other than None.
- Event hooks observe: every implementation runs, and an exception in one is logged
  and never reaches the caller or the other plugins.
- Filter hooks (`filter_*`) change what a page or answer shows: each implementation
  gets the value as the ones before it left it and returns it changed, or None for
  unchanged (`clipsync.plugin_filters.run_filter`); one that raises is logged and
  skipped.

Any hook may return a value, a callable taking no arguments, or an awaitable; the
core resolves it (`clipsync.plugins.await_me_maybe`).
"""

from __future__ import annotations

from typing import Any

from clipsync import hookspec

# --- configuration ------------------------------------------------------------------


@hookspec
def settings_schema() -> type | None:
    """Return the dataclass that describes this plugin's `[plugins.<name>]` table.

    Every field needs a default. The core checks the table against it at start-up
    (unknown keys and wrong types stop start-up with the key named), applies
    `CLIPSYNC_PLUGINS_<NAME>_<KEY>` environment overrides, and hands the instance to
    the plugin's backends as `context.config`. Use `clipsync.settings.Secret` for
    values that may come from `{ "$env" = ... }` or `{ "$file" = ... }`.
    """


# --- backends -------------------------------------------------------------------------


@hookspec
def register_storage_backends() -> list[type]:
    """Return storage backend classes (see `clipsync.backends.StorageBackend`).

    `[storage] backend` picks one of them by its `name`.
    """


@hookspec
def register_transcoders() -> list[type]:
    """Return transcoder classes (see `clipsync.backends.Transcoder`).

    `[transcoder] backend = "auto"` picks the available one of highest `priority`.
    """


@hookspec
def register_auth_backends() -> list[type]:
    """Return authentication backend classes (see `clipsync.backends.AuthBackend`).

    `[auth] backend` picks one of them by its `name`.
    """


@hookspec
def register_analytics_backends() -> list[type]:
    """Return analytics backend classes (see `clipsync.backends.AnalyticsBackend`).

    `[analytics] backend` picks one of them by its `name`. The figures every backend
    must compute are defined in `clipsync.analytics.figures`;
    `clipsync.analytics.backend.BufferedBackend` does the buffering, batching and
    spooling for a backend that only opens its store, inserts a batch and answers a
    few sums.
    """


# --- web ------------------------------------------------------------------------------


@hookspec
def register_routes(plugins: Any) -> list[Any]:
    """Return `clipsync.plugins.Route` objects for pages and endpoints of this plugin.

    They are mounted under `/-/<plugin name>/`, so plugins never collide with each
    other or with ClipSync's own URLs. A handler receives the Sanic request (its
    `request.ctx.actor` is the signed-in user or None) and the path parameters.
    `plugins` is the `clipsync.plugins.PluginHost`, for routes that depend on the
    plugin's settings (`plugins.plugin_config(name)`); raising `ConfigError` here
    stops start-up with the plugin's name.
    """


@hookspec
def register_sign_in_providers(plugins: Any) -> list[Any]:
    """Return `clipsync.plugins.SignInProvider`s: buttons on the sign-in page.

    Each starts a sign-in elsewhere (single sign-on) at its `url`, a same-site path
    (the page adds `?next=`); names are unique. `plugins` is the
    `clipsync.plugins.PluginHost`. Called each time the sign-in page is shown: keep
    it quick, with no I/O.
    """


@hookspec
def filter_video_json(video: Any, data: dict[str, Any], viewer: Any) -> dict[str, Any] | None:
    """Change what ClipSync shows of a video: return the changed mapping, or None.

    `video` is the `clipsync.models.Video` row, `data` a copy of its JSON as the API
    answers it (`clipsync.services.videos.video_json`, as the plugins before this one
    left it), `viewer` the `User` it is shown to. Called for every video of the API's
    answers (list, search, detail, register, edit, live updates), of the home page and
    of the watch page. Every plugin's implementation runs in turn; add keys (prefix
    them with your plugin's name) or change the others. The core keys (`id`, `status`,
    `playable`, `hls`, `ownerId`, `category`) stay as ClipSync made them: players,
    links and access rest on them. A plugin that raises, or returns something other
    than a dict or None, is logged and skipped. It runs for each video of a list:
    keep it quick, with no query per video.
    """


@hookspec
def filter_up_next(user: Any, video: Any, videos: list[Any]) -> list[Any] | None:
    """Change the Up next list offered to `user` after `video`: return the new list, or None.

    `videos` is a list of `clipsync.services.up_next.UpNextItem` (`video`: a `Video`
    row, `reason`: why it is offered, e.g. "co_watched", "same_uploader", "newest"),
    best first, as the plugins before this one left it, already filtered to what `user`
    may see. Reorder, remove, or add items (`UpNextItem(video, "my_plugin")`); an
    added video `user` may not see, a repeat, or `video` itself is dropped, and the
    list is cut to `[recommendations] list_size`. A plugin that raises is logged and
    skipped. Runs on every watch page: keep it quick.
    """


@hookspec
def watch_page_panels(video: Any, viewer: Any) -> Any:
    """Return extra panels for the watch page of `video` (a `Video` row) seen by `viewer`.

    A panel is an HTML string, or a `(template name, context)` pair rendered with the
    active theme's templates (autoescaped). Return one panel, a list of them, or None.
    An HTML string goes into the page as it is: the plugin must escape everything in
    it that came from people (`markupsafe.escape`, or `Markup("<p>{}</p>").format(x)`).
    The panels appear below the description, each in a `<section class="watch-panel">`;
    a plugin that raises is logged and its panels left out.
    """


# --- operations -----------------------------------------------------------------------


@hookspec
def doctor_checks(plugins: Any) -> list[Any] | None:
    """Return `clipsync.doctor.Check`s for `clipsync doctor` (or an awaitable of them).

    For what a plugin depends on that is not a backend, such as a daemon it talks to.
    `plugins` is the `clipsync.plugins.PluginHost` (its `settings` and
    `plugin_config(name)`). A check with `required=False` is information; a failed
    required one makes the doctor fail. Each plugin's checks must answer within the
    doctor's time limit; one that raises or does not answer is reported as failed.
    """


@hookspec(firstresult=True)
def tracer_provider(plugins: Any) -> Any | None:
    """Return the OpenTelemetry `TracerProvider` for ClipSync's spans, or None.

    Called once in each process that serves requests or runs jobs, before its
    backends are built; `plugins` is the `clipsync.plugins.PluginHost`. The first
    provider returned gets every span of `clipsync.tracing` (requests, database
    queries, storage calls, jobs, ffmpeg runs); its `shutdown()` is called when the
    process stops. None from every plugin: no tracing, and nothing is wrapped.
    An exception stops start-up.
    """


# --- notifications --------------------------------------------------------------------


@hookspec
def register_notifiers() -> list[type]:
    """Return notifier classes: channels that tell people what happened.

    Each class has a unique `name` (a person's preferences name it: "inapp",
    "email") and is made with one argument, a `clipsync.backends.BackendContext`
    (`settings`, and `config`: the plugin's validated `[plugins.<name>]` table).

    - `async deliver(message)` gets a `clipsync.services.notification_types.Message`
      (`user_id`, `type`, `title`, `body`, `url`, `video_id`, `email`, `data`) for each
      person who wants this channel for that type. It runs in the process that
      published the event, right after the change committed. A channel that reaches
      outside writes a `Delivery` row and calls
      `clipsync.services.notifications.queue_delivery(row)`; it never sends inline.
    - `async deliver_many(messages)` (optional) takes the messages of one event at once
      (an approval tells a whole category); without it, `deliver` runs per message.
    - `async send(delivery)` (optional) sends one such row from the job consumer;
      raising means "try again later" (with back-off, `[notifications]
      delivery_attempts`), after the last attempt the row is marked failed.
    - `enabled` (optional property): False when the channel is loaded but not set up
      (email with no SMTP host); `notifications.email_enabled()` reads it.
    - `async probe()` (optional) returns a `clipsync.backends.Availability`: can the
      channel reach outside now? `clipsync doctor` reports it as `notify <name>`; it
      fails the doctor only while `enabled`.
    - `async broadcast(event)` (optional) gets every domain event once, for channels
      that are not per person (webhooks).

    A notifier that raises is logged; the other channels still deliver.
    """


# --- events ---------------------------------------------------------------------------


@hookspec
def startup(app: Any) -> None:
    """Called once per server worker after the database and backends are ready."""


@hookspec
def user_registered(user: Any) -> None:
    """Called after a new account is created (by registration, set-up or the CLI).

    `user` is the `clipsync.models.User` row.
    """


@hookspec
def user_category_changed(user: Any, old: str, new: str) -> None:
    """Called after an administrator (or, at the person's sign-in, their single sign-on
    provider's claims) moves `user` from category `old` to `new`.

    The user's earlier tokens no longer work; they see the new category's videos
    once they sign in again.
    """


@hookspec
def video_uploaded(video: Any) -> None:
    """Called when an upload has been checked and registered, before transcoding.

    `video` is the `clipsync.models.Video` row, with its probed metadata.
    """


@hookspec
def video_status_changed(video: Any, old: str, new: str) -> None:
    """Called after a video moves from status `old` to status `new`."""


@hookspec
def video_ready(video: Any) -> None:
    """Called when a video's HLS renditions, poster and sprite are all stored."""


@hookspec
def track_event(event: Any) -> None:
    """Called for every watch event the server accepted from a player.

    `event` is a `clipsync.analytics.events.WatchEvent` (type, video, user, session,
    position, played seconds…), after the analytics backend has it. Keep this
    quick: players send an event every few seconds.
    """


@hookspec
def comment_posted(comment: Any, video: Any, author: Any) -> None:
    """Called once after a new comment or reply is saved, in the process that saved it.

    `comment` is the `clipsync.models.Comment` row (`id`, `body` as written, `parent_id`
    of a reply), `video` the `Video` it is on, `author` the `User` who wrote it. The
    `comment.posted` event goes out on the bus after this hook. Editing, hiding or
    deleting a comment does not call it.
    """


# --- decisions ------------------------------------------------------------------------


@hookspec(firstresult=True)
def validate_upload(video: Any, source: Any, path: Any, plugins: Any) -> str | None:
    """Refuse an upload by returning the message to show the uploader, or None.

    `video` is the `Video` row (owner, original file name, size, category; the title
    comes after), `source` the `clipsync.media.probe.SourceInfo` ffprobe found
    (duration, width, height, codecs…), `path` a local file (`pathlib.Path`) with the
    upload's bytes, there only during the call (object storage downloads it to scratch
    space first), and `plugins` the `clipsync.plugins.PluginHost`, whose
    `plugin_config(name)` is a plugin's validated `[plugins.<name>]` table. The first
    plugin to return a message refuses the upload; its bytes are deleted and the
    uploader sees the message. A `clipsync.errors.ServiceUnavailable` raised instead
    (something the check needs does not answer) refuses it for now: the upload is
    kept, and registering it again tries again.
    """


@hookspec(firstresult=True)
def local_password_refused(user: Any, action: str, plugins: Any) -> str | None:
    """Refuse the use of a ClipSync password by returning the message to show, or None.

    `action` is "sign_in" (after the password proved right, so the answer tells a
    guesser nothing), "register", "change" or "reset"; `user` is the `User` row (None
    when registering). `plugins` is the `clipsync.plugins.PluginHost`. A refusal is
    a 403 with the message, and nothing is changed. Single sign-on plugins use it to
    keep passwords for administrators only.
    """
