"""The Streamlit workbench's modules (pages, cached resources, session-state keys); all logic they call
lives in ``pap_rec_core``."""
