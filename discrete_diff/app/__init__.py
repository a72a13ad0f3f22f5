"""The local web app behind `discrete-diff serve` (the optional `app` extra).

backend.py, tasks.py and live.py are the only modules that call the library (a request run as its CLI command runs
it; the command's options and defaults; the sampling loop's step callback streamed to the page); view.py turns
their plain results into HTML; ui.py lays the pages out with Gradio; server.py launches them offline.
"""
