"""Reference data shared by every tenant (cities, neighborhoods, schools) and the market
statistics per city and day, derived from every feed's listings. Only facts leave the
tenants' collections: names, slugs, coordinates, counts, medians; never a listing."""
