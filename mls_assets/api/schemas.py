"""What the leads API answers, as OpenAPI schemas (documentation: the handlers send the
stored documents as they are, so these name the fields a client can rely on and allow more)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Lead(BaseModel):
    """An expired, canceled or withdrawn listing as a lead (every stored listing field too)."""

    model_config = ConfigDict(extra="allow")

    listingKey: str
    mls: str = Field(description="the MLS of the tenant's feed it comes from")
    standardStatus: str
    statusChangeDate: datetime
    leadStatus: str = Field(description="new, contacted, skipped or converted")
    etag: str = Field(description="the lead's entity tag, for If-Match")


class LeadList(BaseModel):
    leads: list[Lead]
    total: int | None = Field(description="every lead that matches, across pages (with count=true, else null)")
    next_cursor: str | None = Field(description="pass back as `cursor` for the next page; null on the last")


class Photo(BaseModel):
    model_config = ConfigDict(extra="allow")

    photoId: str
    listingKey: str
    order: int


class LeadWithPhotos(BaseModel):
    listing: Lead
    photos: list[Photo]


class PatchedLead(BaseModel):
    listing: Lead


class Problem(BaseModel):
    detail: str | list[dict] = Field(description="what is wrong (for a 422: each field and why)")


def problems(*statuses: int) -> dict[int | str, dict]:
    """The error answers of a route, for its `responses=`."""
    described = {
        401: "no valid API key (Authorization: Bearer <key>)",
        404: "no such lead, or another tenant's",
        412: "the lead changed since its ETag was read (the current ETag is in the answer's ETag header)",
        413: "the request body is over the limit (refused before it is read)",
        422: "a parameter or body field is invalid (each is named)",
        428: "If-Match is required",
    }
    return {status: {"model": Problem, "description": described[status]} for status in statuses}
