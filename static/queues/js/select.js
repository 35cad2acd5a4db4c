// A "select every row on this page" checkbox for tables of checkboxes (hidden until this runs).
for (const all of document.querySelectorAll("input[data-select-all]")) {
  const boxes = () => all.closest("table").querySelectorAll("tbody input[type=checkbox]");
  all.hidden = false;
  all.addEventListener("change", () => {
    for (const box of boxes()) {
      box.checked = all.checked;
    }
  });
}
