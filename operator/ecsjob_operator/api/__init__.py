"""The v1alpha1 API: pydantic models (the source of truth), duration strings, and what is generated from
them (CRDs, the reference's field tables). Imports nothing else of the package."""
