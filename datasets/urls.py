"""URLs of the dataset API under /api/v1/."""

urlpatterns: list = []
