"""The media pipeline: probe a source, plan a rendition ladder, run ffmpeg, write HLS.

Most of it is pure functions (command builders, the ladder planner, playlist
builders and parsers) that tests can check without running anything:

- `probe`: ffprobe a source and turn its JSON into a `SourceInfo`, refusing what we
  cannot play (`UnsupportedMedia`, `TooLong`).
- `ladder`: which renditions to make for a source, never above its size.
- `encoders`: what differs between encoders (CPU, NVENC, VAAPI), kept as data.
- `detection`: whether a GPU encoder can work here (ffmpeg's build, the device node,
  a test encode), for the hardware transcoders' probes.
- `commands`: the ffmpeg argument list: the HLS ladder, the poster and the seek-preview
  sprite, all from one decode in one process.
- `runner`: the one place that starts ffmpeg, follows `-progress`, and kills it on a
  stall or cancellation.
- `playlists`: media playlist parser, our own master playlist, the thumbnails VTT.
- `pipeline`: `transcode()`, the entry point a job calls with a local source file
  and a local output folder.
"""
