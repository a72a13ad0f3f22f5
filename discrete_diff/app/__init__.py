"""The local web app behind `discrete-diff serve` (the optional `app` extra).

backend.py is the only module that calls the library; view.py turns its plain results into HTML; ui.py lays the
pages out with Gradio; server.py launches them offline on 127.0.0.1.
"""
