"""The blockgraph designer: a Streamlit app (ui/app.py, one module per tab in ui/tabs/) over
the compiler API.

The `ui.designer` package holds everything that is not drawing widgets (loading and caching by
text, exports, node insertion, palette forms, training jobs, the per-session state and saving),
so it can be tested and timed without Streamlit; ui/problems.py words the problems.
"""
