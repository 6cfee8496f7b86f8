"""Route modules: public reads (`/api/...`), admin writes (`/api/admin/...`), exports."""
