"""The lifecycle drawn and written: diagrams and the generated pages."""
