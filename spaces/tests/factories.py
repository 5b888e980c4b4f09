import factory

from spaces.models import Doorway, Space


class SpaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Space

    name = factory.Sequence(lambda n: f"Space {n}")
    allow_negative = False


class DoorwayFactory(factory.django.DjangoModelFactory):
    """A doorway from outside (side_a) into a new space (side_b)."""

    class Meta:
        model = Doorway

    name = factory.Sequence(lambda n: f"Doorway {n}")
    side_a = None
    side_b = factory.SubFactory(SpaceFactory)
