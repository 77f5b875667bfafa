"""The blockgraph designer: a Streamlit app (ui/app.py) over the compiler API.

`ui.designer` holds everything that is not drawing widgets (loading and caching by text,
error quoting, node insertion, palette forms, the per-session state) so it can be tested and
timed without Streamlit.
"""
