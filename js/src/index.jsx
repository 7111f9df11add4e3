import { PluginComponentType, registerComponent } from "./globals.js";
import AnnotatorInput from "./AnnotatorInput.jsx";
import ConceptScatter from "./ConceptScatter.jsx";
import MapGallery from "./MapGallery.jsx";
import NamingBar from "./NamingBar.jsx";

// Components the Python naming panel places in its layout by name.
for (const [name, component] of [
  ["NamingAnnotator", AnnotatorInput],
  ["NamingConceptScatter", ConceptScatter],
  ["NamingMapGallery", MapGallery],
  ["NamingBar", NamingBar],
]) {
  registerComponent({ name, label: name, component, type: PluginComponentType.Component, activator: () => true });
}
