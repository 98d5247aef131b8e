"""Prompt templates (P5 families), prompt parts and rendering into them, and the search's slot layout."""

from pap_rec_core.prompts.render import key_info_parts, render_text, truncate_history
from pap_rec_core.prompts.templates import TEMPLATES, Family, Template, get_template, templates_of

__all__ = ["Family", "TEMPLATES", "Template", "get_template", "key_info_parts", "render_text",
           "templates_of", "truncate_history"]
