"""Prompt templates (P5 families) and rendering into tokenizer parts."""

from pap_rec_core.prompts.render import key_info_parts, render_source, render_text, truncate_history
from pap_rec_core.prompts.templates import TEMPLATES, Family, Template, get_template, templates_of

__all__ = ["Family", "TEMPLATES", "Template", "get_template", "key_info_parts", "render_source", "render_text",
           "templates_of", "truncate_history"]
