"""What the schema says about Spark StandardFields: which are numbers, dates, timestamps.

Spark sends many numbers as strings (`"50000.0"`, `" -116.3237"`); only the fields named
here are parsed, everything else is kept as it arrives.
"""

from __future__ import annotations

INTEGER_FIELDS = frozenset(
    {
        "BedsTotal",
        "BedroomsTotal",
        "BathroomsTotalInteger",
        "BathroomsFull",
        "BathroomsHalf",
        "BathroomsThreeQuarter",
        "YearBuilt",
        "DaysOnMarket",
        "CumulativeDaysOnMarket",
        "PhotosCount",
        "Stories",
        "StoriesTotal",
        "GarageSpaces",
        "ParkingTotal",
        "CarportSpaces",
        "NumberOfUnitsTotal",
        "FireplacesTotal",
    }
)

FLOAT_FIELDS = frozenset(
    {
        "ListPrice",
        "OriginalListPrice",
        "PreviousListPrice",
        "ClosePrice",
        "BathsTotal",
        "BathroomsTotalDecimal",
        "LivingArea",
        "BuildingAreaTotal",
        "LotSizeArea",
        "LotSizeSquareFeet",
        "LotSizeAcres",
        "Latitude",
        "Longitude",
        "AssociationFee",
        "AssociationFee2",
        "LandLeaseAmount",
        "PricePerSquareFoot",
        "TaxAnnualAmount",
        "RentAmount",
        "MonthlyRent",
    }
)

NUMERIC_FIELDS = INTEGER_FIELDS | FLOAT_FIELDS

TIMESTAMP_FIELDS = frozenset(
    {
        "ModificationTimestamp",
        "StatusChangeTimestamp",
        "PhotosChangeTimestamp",
        "OriginalEntryTimestamp",
        "PriceChangeTimestamp",
        "MajorChangeTimestamp",
        "DocumentsChangeTimestamp",
        "VideosChangeTimestamp",
        "OpenHousesChangeTimestamp",
    }
)

DATE_FIELDS = frozenset(
    {
        "ListDate",
        "OnMarketDate",
        "CloseDate",
        "ContractStatusChangeDate",
        "ExpirationDate",
        "OffMarketDate",
        "PurchaseContractDate",
        "LandLeaseExpirationDate",
        "CancellationDate",
        "WithdrawnDate",
        "ListingContractDate",
    }
)

TEMPORAL_FIELDS = TIMESTAMP_FIELDS | DATE_FIELDS

# A listing without these cannot be stored, routed or versioned.
REQUIRED_FIELDS = ("ListingKey", "ListingId", "StandardStatus", "ModificationTimestamp")

# Source fields that change without the listing changing (they tick daily); they do not
# take part in the content hash, so they alone never cause a write.
VOLATILE_SOURCE_FIELDS = frozenset({"DaysOnMarket", "CumulativeDaysOnMarket"})

PHOTO_URI_FIELDS = (
    "UriThumb",
    "Uri300",
    "Uri640",
    "Uri800",
    "Uri1024",
    "Uri1280",
    "Uri1600",
    "Uri2048",
    "UriLarge",
)

# Written by the CRM and lead tools; the writer sets them on insert only.
LEAD_FIELD_DEFAULTS = {
    "leadStatus": "new",
    "skipTraced": False,
    "voicemailSent": False,
    "emailSent": False,
}
CRM_OWNED_FIELDS = (
    *LEAD_FIELD_DEFAULTS,
    "skipTraceDate",
    "voicemailSentDate",
    "emailSentDate",
    "ownerName",
    "ownerPhone",
    "ownerEmail",
    "crm_status",
    "notes",
    "crm_property_ids",
    "leadVersion",  # bumped by every CRM write to the lead (optimistic concurrency)
)
